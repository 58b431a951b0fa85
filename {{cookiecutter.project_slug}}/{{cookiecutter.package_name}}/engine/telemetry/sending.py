"""The producer's spans: ``send <queue>`` around each SendMessage (PRODUCER, its context goes with
the message), or around a whole batch (CLIENT) with a ``create <queue>`` PRODUCER span per message
whose context goes with that message, as the messaging conventions lay out batches."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace

from . import names
from .instruments import destination_attributes, instruments
from .propagation import with_trace_context

if TYPE_CHECKING:
    from ..producer import OutgoingMessage


@contextmanager
def send_span(queue: str, batch_size: int | None = None) -> Iterator[trace.Span]:
    attributes: dict[str, str | int] = {
        **destination_attributes(queue),
        names.OPERATION_TYPE: names.SEND,
        names.OPERATION_NAME: names.SEND,
    }
    if batch_size is not None:
        attributes[names.BATCH_COUNT] = batch_size
    kind = trace.SpanKind.PRODUCER if batch_size is None else trace.SpanKind.CLIENT
    with instruments().tracer.start_as_current_span(
        f"{names.SEND} {queue}", kind=kind, attributes=attributes
    ) as span:
        yield span


def created(queue: str, message: OutgoingMessage, max_message_bytes: int) -> OutgoingMessage:
    """One message of a batch, with the context of its own ``create`` span."""
    attributes = {
        **destination_attributes(queue),
        names.OPERATION_TYPE: names.CREATE,
        names.OPERATION_NAME: names.CREATE,
    }
    with instruments().tracer.start_as_current_span(
        f"{names.CREATE} {queue}", kind=trace.SpanKind.PRODUCER, attributes=attributes
    ):
        return with_trace_context(message, max_message_bytes)


def sent_alone(queue: str, message: OutgoingMessage, max_message_bytes: int) -> OutgoingMessage:
    """The message with the current (``send``) span's context."""
    return with_trace_context(message, max_message_bytes)
