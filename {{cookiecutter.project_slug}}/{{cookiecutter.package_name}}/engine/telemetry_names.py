"""The names of the drain's metrics and spans: one place for the code that emits them, the workbook and
the alert rules that query them (infra/azure), and the tests that hold them together."""

from __future__ import annotations

from typing import Final

MESSAGES_RECEIVED: Final = "sqs.drain.messages.received"
MESSAGES_HANDLED: Final = "sqs.drain.messages.handled"
# Counted by the attribute ERROR_TYPE.
MESSAGES_FAILED: Final = "sqs.drain.messages.failed"
HANDLER_DURATION: Final = "sqs.drain.handler.duration"  # seconds
# From the message's SentTimestamp to its handler's start.
DELIVERY_LATENCY: Final = "sqs.drain.delivery.latency"  # seconds
QUEUE_VISIBLE: Final = "sqs.queue.messages.visible"
QUEUE_IN_FLIGHT: Final = "sqs.queue.messages.in_flight"
QUEUE_DELAYED: Final = "sqs.queue.messages.delayed"
DLQ_VISIBLE: Final = "sqs.dlq.messages.visible"
PASS_DURATION: Final = "sqs.drain.pass.duration"  # noqa: S105 (a metric name, in seconds)
PASSES_IDLE: Final = "sqs.drain.passes.idle"
TOKENS_ISSUED: Final = "sqs.drain.tokens.issued"

ERROR_TYPE: Final = "error.type"

METRICS: Final = (
    MESSAGES_RECEIVED,
    MESSAGES_HANDLED,
    MESSAGES_FAILED,
    HANDLER_DURATION,
    DELIVERY_LATENCY,
    QUEUE_VISIBLE,
    QUEUE_IN_FLIGHT,
    QUEUE_DELAYED,
    DLQ_VISIBLE,
    PASS_DURATION,
    PASSES_IDLE,
    TOKENS_ISSUED,
)


def pass_span_name(queue: str) -> str:
    """The span of one drain pass over ``queue``."""
    return f"drain {queue}"
