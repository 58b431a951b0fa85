"""The SQS trigger: a timer that drains the input queue (Azure Functions has no SQS trigger).

Timer functions run as a singleton across instances and never overlap themselves,
so one drain runs at a time; its budget keeps it under functionTimeout. While that
pass falls behind, it fans out: drain tokens on a Storage queue start more passes
elsewhere (``drain_worker``, ``engine/scale_out``), up to the cap. Each tick first
pushes the watchdog back, which drains in the timer's place if ticks stop coming
(``engine/scale_out/watchdog.py``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

import azure.functions as func

from ..engine.runtime import drain_and_report
from ..engine.scale_out.fan_out import fan_out_for
from ..engine.settings import Settings

if TYPE_CHECKING:
    from ..engine.consumer import DrainSummary

logger = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%SQS_POLL_SCHEDULE%", run_on_startup=False, use_monitor=True)
def drain_input_queue_on_timer(timer: func.TimerRequest) -> None:
    # Loaded at the first tick, not when the host indexes the app (benchmarks/cold_start.py).
    from ..engine.scale_out.watchdog import keep_watchdog_dormant

    settings = Settings.from_env()
    # A pass that polls until the next tick makes that tick past due by design.
    if timer.past_due and not (settings.poll_until_next_tick or settings.poll_while_busy):
        logger.info("drain timer is past due; draining now")
    watchdog = keep_watchdog_dormant(settings)  # a tick came, even if it does not drain
    fan_out = fan_out_for(settings)
    if fan_out and not fan_out.start():
        logger.info("another tick's drain pass is still running; this tick does not drain")
        return

    def progress(summary: DrainSummary) -> None:
        if fan_out:
            fan_out.on_progress(summary)
        if watchdog:
            watchdog.on_progress(summary)

    drain_and_report(
        settings,
        stop=fan_out.stop if fan_out else None,
        progress=progress,
        let_go=fan_out.finish if fan_out else None,
        next_tick=next_occurrence(timer),
    )


def next_occurrence(timer: func.TimerRequest) -> datetime | None:
    """When the host fires this timer next (its ScheduleStatus, kept by ``use_monitor``), if it says."""
    status = getattr(timer, "schedule_status", None) or {}
    try:
        return datetime.fromisoformat(str(status["Next"]))
    except (KeyError, ValueError):
        return None
