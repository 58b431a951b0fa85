"""Wiring: settings, client, queues and handler put together, for the functions and the CLI.

The functions import this module when the host indexes the app: the consumer, boto3 and the producer
load at the first drain or send, not at start-up (benchmarks/cold_start.py).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .settings import Settings

if TYPE_CHECKING:
    from .consumer import DrainSummary, Handler
    from .consumer.receiving import LastMessage
    from .producer import Sender

logger = logging.getLogger(__name__)


class DrainFailed(RuntimeError):
    """SQS kept failing, or deletes did; raising marks the invocation failed in the host's logs."""


def drain_input_queue(
    settings: Settings | None = None,
    *,
    handler: Handler | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[DrainSummary], None] | None = None,
    progress_every_seconds: float | None = None,
    next_tick: datetime | None = None,
) -> DrainSummary:
    """One pass over the input queue. ``next_tick`` is when the timer fires next: with
    SQS_POLL_UNTIL_NEXT_TICK the pass polls until then, so the next pass takes over at once; with
    SQS_POLL_WHILE_BUSY, only while messages keep coming (this process's passes remember the last)."""
    from .attempt_ledger import attempt_ledger
    from .aws_session import sqs_client
    from .consumer import DrainOptions, PassObserver, PassObservers, drain
    from .consumer.drain_pass import PROGRESS_EVERY_SECONDS
    from .consumer.receiving import PollWhileBusy
    from .large_payloads import LargePayloads, payload_bucket
    from .queues import is_fifo, queue_url

    settings = settings or Settings.from_env()
    if handler is None:
        # Loaded at the first drain, not at indexing: the handler imports pydantic and its own libraries.
        from ..handler import handle_message

        handler = handle_message
    # OpenTelemetry loads here, at the first drain, not at indexing.
    from .telemetry.drain import PassTelemetry, record_queue_depths

    client = sqs_client(settings)
    url = queue_url(client, settings.input_queue)
    observer: PassObserver = PassTelemetry(url)
    if (bucket := payload_bucket(settings)) is not None:
        # Pointers resolved before the handler; objects deleted once SQS confirmed their message's delete.
        payloads = LargePayloads(bucket, delete_after=settings.large_payload_delete)
        handler = payloads.resolving(handler)
        observer = PassObservers(observer, payloads)
    tick = _monotonic_at(next_tick) if next_tick else None
    summary = drain(
        client,
        url,
        handler,
        DrainOptions.from_settings(settings),
        stop=stop,
        progress=progress,
        progress_every_seconds=PROGRESS_EVERY_SECONDS
        if progress_every_seconds is None
        else progress_every_seconds,
        observer=observer,
        poll_until=tick if settings.poll_until_next_tick else None,
        busy=(
            PollWhileBusy(tick, settings.quiet_spell_seconds, last_message())
            if settings.poll_while_busy and tick is not None
            else None
        ),
        # FIFO: attempts retried inside a pass outlive a hand-back (consumer/attempts.py).
        attempts=attempt_ledger(url) if is_fifo(url) else None,
    )
    summary.depth_requests = record_queue_depths(client, url, settings.dlq)
    return summary


def drain_and_report(
    settings: Settings,
    *,
    stop: threading.Event | None,
    progress: Callable[[DrainSummary], None],
    let_go: Callable[[], None] | None = None,
    next_tick: datetime | None = None,
    **log_fields: object,
) -> None:
    """A function's pass: it drains, sampled every ``SAMPLE_EVERY_SECONDS`` (each sample renews the
    pass's slot), lets its slot go however it ends (``let_go``), then logs its summary with
    ``log_fields``; a problem fails the invocation (``DrainFailed``)."""
    from .scale_out.pass_leases import SAMPLE_EVERY_SECONDS

    try:
        summary = drain_input_queue(
            settings,
            stop=stop,
            progress=progress,
            progress_every_seconds=SAMPLE_EVERY_SECONDS,
            next_tick=next_tick,
        )
    finally:
        if let_go is not None:
            let_go()
    report({**summary.as_log_fields(), **log_fields}, summary.problem)


@functools.cache
def last_message() -> LastMessage:
    """When this process's timer passes last saw a message (busy stays fast, across passes)."""
    from .consumer.receiving import LastMessage

    return LastMessage()


def _monotonic_at(moment: datetime) -> float:
    """The ``time.monotonic()`` reading at wall-clock ``moment`` (naive means UTC, as the host's clock)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return time.monotonic() + (aware - datetime.now(UTC)).total_seconds()


def output_sender(
    settings: Settings | None = None, *, queue: str | None = None, offload: bool = True
) -> Sender:
    """A sender to ``queue`` (a name or URL), by default SQS_OUTPUT_QUEUE; with ``offload``, a body
    above the limit goes to SQS_LARGE_PAYLOAD_BUCKET when it is set."""
    from .aws_session import sqs_client
    from .large_payloads import Offloader, payload_bucket
    from .producer import Sender
    from .queues import queue_url

    settings = settings or Settings.from_env()
    client = sqs_client(settings)
    bucket = payload_bucket(settings) if offload else None
    return Sender(
        client,
        queue_url(client, queue or settings.output_queue),
        max_message_bytes=settings.max_message_bytes,
        offloader=Offloader(bucket) if bucket else None,
    )


def report(fields: dict[str, object], problem: str | None) -> None:
    """One log line per pass, with structured fields; a problem fails the invocation."""
    logger.info("drain finished %s", json.dumps(fields), extra={"sqs_drain": fields})
    if problem:
        raise DrainFailed(problem)
