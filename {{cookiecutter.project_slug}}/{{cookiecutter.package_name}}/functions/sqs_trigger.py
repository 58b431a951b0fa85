"""The SQS trigger: a timer that drains the input queue (Azure Functions has no SQS trigger).

Timer functions run as a singleton across instances and never overlap themselves,
so one drain runs at a time; its budget keeps it under functionTimeout.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func

from ..runtime import drain_input_queue

logger = logging.getLogger(__name__)
bp = func.Blueprint()


class DrainFailed(RuntimeError):
    """SQS kept failing, or deletes did; raising marks the invocation failed in the host's logs."""


@bp.timer_trigger(arg_name="timer", schedule="%SQS_POLL_SCHEDULE%", run_on_startup=False, use_monitor=True)
def drain_input_queue_on_timer(timer: func.TimerRequest) -> None:
    if timer.past_due:
        logger.info("drain timer is past due; draining now")
    summary = drain_input_queue()
    fields = summary.as_log_fields()
    logger.info("drain finished %s", json.dumps(fields), extra={"sqs_drain": fields})
    if summary.problem:
        raise DrainFailed(summary.problem)
