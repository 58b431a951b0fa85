"""The drain's telemetry: a ``drain <queue>`` span per pass, a ``process <queue>`` CONSUMER span per
handler run, the pass's metrics, and the queue depths read once per pass.

Each process span is the child of the context its message was sent in (W3C attributes, else
X-Ray's ``AWSTraceHeader``), with a link to its pass; a message sent with no context gets the
pass as parent. The conventions leave the parent to the consumer when one message is processed at
a time, as here; a child keeps the send, the handler and whatever the handler calls in one trace,
which is what Application Insights' end-to-end view follows (operation_Id), while the link still
leads from the message to the pass that ran it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace

from ..consumer import DrainSummary, PassObserver, SqsMessage
from ..queues import dead_letter_queue_url, queue_depth, queue_name, queue_url
from . import names
from .instruments import destination_attributes, instruments
from .propagation import producer_context
from .setup import exporting

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)


def error_type(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


class PassTelemetry(PassObserver):
    def __init__(self, queue: str) -> None:
        self.queue = queue_name(queue)
        self.instruments = instruments()
        self.attributes = destination_attributes(self.queue)
        self.span: trace.Span = trace.INVALID_SPAN

    def pass_started(self) -> None:
        self.span = self.instruments.tracer.start_span(
            f"{names.DRAIN} {self.queue}",
            kind=trace.SpanKind.INTERNAL,
            attributes={**self.attributes, names.OPERATION_TYPE: "receive", names.OPERATION_NAME: "drain"},
        )

    def received(self, messages: Sequence[SqsMessage]) -> None:
        if messages:
            self.instruments.received.add(len(messages), self.attributes)

    @contextmanager
    def handling(self, message: SqsMessage) -> Iterator[None]:
        started = time.time()
        attributes: dict[str, str | int | float] = {
            **self.attributes,
            names.OPERATION_TYPE: names.PROCESS,
            names.OPERATION_NAME: names.PROCESS,
            names.MESSAGE_ID: message.message_id,
            names.RECEIVE_COUNT: message.receive_count,
        }
        if message.sent_at is not None:
            latency = max(0.0, started - message.sent_at.timestamp())
            self.instruments.delivery_latency.record(latency, self.attributes)
            attributes[names.DELIVERY_LATENCY_MS] = round(latency * 1000, 1)
        parent = producer_context(message) or trace.set_span_in_context(self.span)
        link = trace.Link(self.span.get_span_context())
        try:
            with self.instruments.tracer.start_as_current_span(
                f"{names.PROCESS} {self.queue}",
                context=parent,
                kind=trace.SpanKind.CONSUMER,
                links=[link] if link.context.is_valid else [],
                attributes=attributes,
            ) as span:
                try:
                    yield
                except (KeyboardInterrupt, SystemExit):
                    raise  # the pass stops; the message is given back, not failed
                # As the consumer counts it: a CancelledError fails a message too.
                except BaseException as error:
                    span.set_attribute(names.ERROR_TYPE, error_type(error))
                    self.instruments.failed.add(1, {**self.attributes, names.ERROR_TYPE: error_type(error)})
                    raise
                self.instruments.handled.add(1, self.attributes)
        finally:
            self.instruments.handler_duration.record(time.time() - started, self.attributes)

    def pass_finished(self, summary: DrainSummary) -> None:
        outcome = "failed" if summary.problem else "ok"
        stopped = {names.STOPPED_BECAUSE: summary.stopped_because or "unknown"}
        self.instruments.pass_duration.record(summary.duration_seconds, {**self.attributes, **stopped})
        self.instruments.passes.add(1, {**self.attributes, **stopped, names.OUTCOME: outcome})
        if not summary.received:
            self.instruments.idle_passes.add(1, self.attributes)
        self.span.set_attributes(
            {
                names.BATCH_COUNT: summary.received,
                "sqs.drain.succeeded": summary.succeeded,
                "sqs.drain.failed": summary.failed,
                names.STOPPED_BECAUSE: summary.stopped_because,
                names.OUTCOME: outcome,
            }
        )
        if summary.problem:
            self.span.set_status(trace.StatusCode.ERROR, summary.problem)
        self.span.end()


def record_queue_depths(client: SQSClient, input_url: str, dlq: str) -> int:
    """Reads the input queue's and the DLQ's counts into the gauges, one GetQueueAttributes each;
    returns the SQS requests made. Reads nothing when no metric is exported; never raises."""
    if not exporting():
        return 0
    gauges = instruments()
    requests = 0
    try:
        requests += 1
        depth = queue_depth(client, input_url)
        attributes = destination_attributes(queue_name(input_url))
        gauges.queue_visible.set(depth.visible, attributes)
        gauges.queue_in_flight.set(depth.in_flight, attributes)
        gauges.queue_delayed.set(depth.delayed, attributes)
        dlq_url = _dlq_url(client, input_url, dlq)
        if dlq_url:
            requests += 1
            dead = queue_depth(client, dlq_url)
            gauges.dlq_visible.set(dead.visible, destination_attributes(queue_name(dlq_url)))
    except Exception as error:  # telemetry never fails a pass
        logger.warning("queue depths not read: %s", error)
    return requests


@functools.lru_cache(maxsize=16)
def _dlq_url(client: SQSClient, input_url: str, dlq: str) -> str | None:
    """SQS_DLQ when set, else the input queue's redrive target; resolved once per process."""
    return queue_url(client, dlq) if dlq else dead_letter_queue_url(client, input_url)


def record_tokens_issued(queue: str, count: int) -> None:
    if count:
        instruments().tokens_issued.add(count, destination_attributes(queue_name(queue)))
