"""The names the app's telemetry goes by, written once: the code, docs/monitoring.md's Kusto
queries, the workbook and the alert rules all use these.

In Application Insights a metric lands in ``customMetrics`` under its name, with its
attributes in ``customDimensions``; CONSUMER spans land in ``requests``, the others in
``dependencies``.
"""

from __future__ import annotations

# The instrumentation scope (tracer and meter name).
SCOPE = "sqs_functions"

# Metrics, every drain pass. Counters count messages or passes; histograms are in seconds.
MESSAGES_RECEIVED = "sqs.drain.messages.received"
MESSAGES_HANDLED = "sqs.drain.messages.handled"
MESSAGES_FAILED = "sqs.drain.messages.failed"  # attribute error.type
HANDLER_DURATION = "sqs.drain.handler.duration"
# From SQS's SentTimestamp to the handler's start.
DELIVERY_LATENCY = "sqs.drain.delivery.latency"
DRAIN_DURATION = "sqs.drain.pass.duration"  # attribute sqs.drain.stopped_because
PASSES = "sqs.drain.passes"  # attributes sqs.drain.stopped_because, sqs.drain.outcome
IDLE_PASSES = "sqs.drain.passes.idle"  # passes that received nothing
DRAIN_TOKENS_ISSUED = "sqs.drain.tokens.issued"
# Gauges read once per pass (one GetQueueAttributes per queue), when telemetry exports.
QUEUE_VISIBLE = "sqs.queue.messages.visible"
QUEUE_IN_FLIGHT = "sqs.queue.messages.in_flight"
QUEUE_DELAYED = "sqs.queue.messages.delayed"
DLQ_VISIBLE = "sqs.dlq.messages.visible"

ALL_METRICS = (
    MESSAGES_RECEIVED,
    MESSAGES_HANDLED,
    MESSAGES_FAILED,
    HANDLER_DURATION,
    DELIVERY_LATENCY,
    DRAIN_DURATION,
    PASSES,
    IDLE_PASSES,
    DRAIN_TOKENS_ISSUED,
    QUEUE_VISIBLE,
    QUEUE_IN_FLIGHT,
    QUEUE_DELAYED,
    DLQ_VISIBLE,
)

# Attributes: the OpenTelemetry messaging conventions' names, and the app's own.
MESSAGING_SYSTEM = "messaging.system"
SQS_SYSTEM = "aws_sqs"
DESTINATION = "messaging.destination.name"
OPERATION_TYPE = "messaging.operation.type"
OPERATION_NAME = "messaging.operation.name"
MESSAGE_ID = "messaging.message.id"
BATCH_COUNT = "messaging.batch.message_count"
ERROR_TYPE = "error.type"
STOPPED_BECAUSE = "sqs.drain.stopped_because"
OUTCOME = "sqs.drain.outcome"  # ok, or failed (the pass reported a problem)
RECEIVE_COUNT = "sqs.message.receive_count"
# On each process span, so Kusto can take percentiles per message (customMetrics holds aggregates).
DELIVERY_LATENCY_MS = "sqs.delivery_latency_ms"

# Span names: "<operation> <queue name>", as the conventions ask.
SEND = "send"
CREATE = "create"
PROCESS = "process"
DRAIN = "drain"

# W3C trace context, carried in String message attributes; X-Ray's system attribute.
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
AWS_TRACE_HEADER = "AWSTraceHeader"
# SQS takes at most 10 message attributes per message.
SQS_MAX_MESSAGE_ATTRIBUTES = 10
