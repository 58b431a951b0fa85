"""The app's tracer and metric instruments, made once per process after ``setup.configure``."""

from __future__ import annotations

import threading

from opentelemetry import metrics, trace

from . import names
from .setup import configure

# Seconds: from a fast handler (5 ms) to a message that waited an hour for its tick or its retry.
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600)


class Instruments:
    def __init__(self) -> None:
        self.tracer = trace.get_tracer(names.SCOPE)
        meter = metrics.get_meter(names.SCOPE)
        self.received = meter.create_counter(
            names.MESSAGES_RECEIVED, unit="{message}", description="Messages the drain received"
        )
        self.handled = meter.create_counter(
            names.MESSAGES_HANDLED, unit="{message}", description="Messages the handler finished"
        )
        self.failed = meter.create_counter(
            names.MESSAGES_FAILED, unit="{message}", description="Handler runs that raised, by error.type"
        )
        self.handler_duration = meter.create_histogram(
            names.HANDLER_DURATION,
            unit="s",
            description="How long one handler run took",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self.delivery_latency = meter.create_histogram(
            names.DELIVERY_LATENCY,
            unit="s",
            description="From the message's SentTimestamp to its handler's start",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self.pass_duration = meter.create_histogram(
            names.DRAIN_DURATION,
            unit="s",
            description="How long one drain pass took",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self.passes = meter.create_counter(names.PASSES, unit="{pass}", description="Drain passes finished")
        self.idle_passes = meter.create_counter(
            names.IDLE_PASSES, unit="{pass}", description="Drain passes that received nothing"
        )
        self.tokens_issued = meter.create_counter(
            names.DRAIN_TOKENS_ISSUED, unit="{token}", description="Drain tokens put for more passes"
        )
        self.queue_visible = meter.create_gauge(
            names.QUEUE_VISIBLE, unit="{message}", description="Input queue: visible messages"
        )
        self.queue_in_flight = meter.create_gauge(
            names.QUEUE_IN_FLIGHT, unit="{message}", description="Input queue: received, not yet deleted"
        )
        self.queue_delayed = meter.create_gauge(
            names.QUEUE_DELAYED, unit="{message}", description="Input queue: delayed messages"
        )
        self.dlq_visible = meter.create_gauge(
            names.DLQ_VISIBLE, unit="{message}", description="Dead-letter queue: visible messages"
        )


_lock = threading.Lock()
_made: list[Instruments] = []


def instruments() -> Instruments:
    """The process's instruments; the first call configures the exporters."""
    with _lock:
        if not _made:
            configure()
            _made.append(Instruments())
        return _made[0]


def destination_attributes(queue: str) -> dict[str, str]:
    return {names.MESSAGING_SYSTEM: names.SQS_SYSTEM, names.DESTINATION: queue}
