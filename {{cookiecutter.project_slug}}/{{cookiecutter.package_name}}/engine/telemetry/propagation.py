"""A message's trace context: W3C ``traceparent``/``tracestate`` in its message attributes on the
way out; on the way in, those or else X-Ray's ``AWSTraceHeader`` system attribute."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import names

if TYPE_CHECKING:
    from ..consumer import SqsMessage
    from ..producer import OutgoingMessage

logger = logging.getLogger(__name__)

# W3C only: a global propagator may add baggage, which would take one more of the 10 attributes.
W3C = TraceContextTextMapPropagator()


def with_trace_context(message: OutgoingMessage, max_message_bytes: int) -> OutgoingMessage:
    """The message with the current trace context in its attributes, or unchanged when there is
    none, the caller set ``traceparent`` already, or no room is left (10 attributes, or the size)."""
    carrier: dict[str, str] = {}
    W3C.inject(carrier)
    if not carrier or names.TRACEPARENT in message.attributes:
        return message
    room = names.SQS_MAX_MESSAGE_ATTRIBUTES - len(message.attributes)
    if room < len(carrier):
        carrier.pop(names.TRACESTATE, None)
    if room < len(carrier):
        logger.debug(
            "trace context not sent: the message already has %d attributes, SQS's limit is %d",
            len(message.attributes),
            names.SQS_MAX_MESSAGE_ATTRIBUTES,
        )
        return message
    attributes: dict[str, Any] = dict(message.attributes)
    attributes.update({key: {"DataType": "String", "StringValue": value} for key, value in carrier.items()})
    traced = replace(message, attributes=attributes)
    if traced.size_bytes() > max_message_bytes >= message.size_bytes():
        logger.debug("trace context not sent: it would take the message over %d bytes", max_message_bytes)
        return message
    return traced


def producer_context(message: SqsMessage) -> Context | None:
    """The context the message was sent in, or None when it carries none."""
    carrier = {
        key: value["StringValue"]
        for key in (names.TRACEPARENT, names.TRACESTATE)
        if (value := message.message_attributes.get(key)) and "StringValue" in value
    }
    if carrier:
        context = W3C.extract(carrier)
        if trace.get_current_span(context).get_span_context().is_valid:
            return context
    xray = xray_span_context(message.attributes.get(names.AWS_TRACE_HEADER, ""))
    return trace.set_span_in_context(trace.NonRecordingSpan(xray)) if xray else None


def xray_span_context(header: str) -> trace.SpanContext | None:
    """``Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1`` as a remote span context, or None."""
    fields: Mapping[str, str] = dict(part.strip().split("=", 1) for part in header.split(";") if "=" in part)
    root = fields.get("Root", "").split("-")
    parent = fields.get("Parent", "")
    if len(root) != 3 or root[0] != "1" or len(root[1]) != 8 or len(root[2]) != 24 or len(parent) != 16:
        return None
    try:
        trace_id, span_id = int(root[1] + root[2], 16), int(parent, 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    sampled = trace.TraceFlags.SAMPLED if fields.get("Sampled") == "1" else trace.TraceFlags.DEFAULT
    return trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(sampled))


@contextmanager
def new_trace() -> Iterator[None]:
    """Runs the block in an empty context: its spans start a new trace, whatever the caller's was."""
    token = context.attach(Context())
    try:
        yield
    finally:
        context.detach(token)
