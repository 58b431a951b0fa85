"""One more drain pass per drain token: the instances the timer's fan-out asked for.

host.json gives each instance one token at a time (queues ``batchSize`` 1,
``newBatchThreshold`` 0), so the scale controller spreads K tokens over K instances.
A token's pass runs only in a free slot (``claim_token_slot``): never more than
``SQS_SCALE_OUT_MAX_WORKERS`` at once, however many tokens arrive. It never fans out.
A failed pass fails its invocation and, with ``maxDequeueCount`` 1, its token goes to
the poison queue rather than being retried: the next tick decides again.

The same queue carries the watchdog, which drains in the timer's place when ticks stop
(``engine/scale_out/watchdog.py``).
"""

from __future__ import annotations

import logging

import azure.functions as func

from ..engine.runtime import drain_and_report
from ..engine.scale_out.drain_token import BadToken, WatchdogToken, decode_token
from ..engine.scale_out.fan_out import claim_token_slot
from ..engine.settings import Settings

logger = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.queue_trigger(arg_name="token", queue_name="%SQS_SCALE_OUT_QUEUE%", connection="AzureWebJobsStorage")
def drain_input_queue_on_token(token: func.QueueMessage) -> None:
    settings = Settings.from_env()
    try:
        drain_token = decode_token(token.get_body().decode("utf-8", errors="replace"))
    except BadToken as error:
        logger.error("token %s dropped unrun: %s", token.id, error)
        return
    if drain_token.queue != settings.input_queue:
        logger.warning(
            "token %s dropped unrun: it asks to drain %s, this app drains %s",
            token.id,
            drain_token.queue,
            settings.input_queue,
        )
        return
    if isinstance(drain_token, WatchdogToken):
        # Loaded when a watchdog runs, not when the host indexes the app (benchmarks/cold_start.py).
        from ..engine.scale_out.watchdog import stand_in

        stand_in(settings, token.id or "", drain_token)
        return
    if drain_token.is_stale():
        logger.info(
            "token %s dropped unrun: %.0f s old, past its %.0f s budget",
            token.id,
            drain_token.age_seconds(),
            drain_token.budget_seconds,
        )
        return
    try:
        lease = claim_token_slot(settings)
    except Exception as error:
        logger.error("token %s dropped unrun: no slot to run in (%s)", token.id, error)
        return
    if lease is None:
        logger.info(
            "token %s dropped unrun: %d token passes already running (SQS_SCALE_OUT_MAX_WORKERS)",
            token.id,
            settings.scale_out_max_workers,
        )
        return
    drain_and_report(
        settings,
        stop=lease.lost,
        progress=lease.on_progress,
        let_go=lease.release,
        fan_out_id=drain_token.fan_out_id,
    )
