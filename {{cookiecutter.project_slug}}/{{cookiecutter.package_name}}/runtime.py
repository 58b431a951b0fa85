"""Wiring: settings, client, queues and handler put together, for the functions and the CLI."""

from __future__ import annotations

import threading

from .aws_session import sqs_client
from .consumer import DrainOptions, DrainSummary, drain
from .message_handler import handle_message
from .producer import Sender
from .queues import queue_url
from .settings import Settings


def drain_input_queue(
    settings: Settings | None = None, *, stop: threading.Event | None = None
) -> DrainSummary:
    settings = settings or Settings.from_env()
    client = sqs_client(settings)
    return drain(
        client,
        queue_url(client, settings.input_queue),
        handle_message,
        DrainOptions.from_settings(settings),
        stop=stop,
    )


def output_sender(settings: Settings | None = None) -> Sender:
    settings = settings or Settings.from_env()
    client = sqs_client(settings)
    return Sender(
        client,
        queue_url(client, settings.output_queue),
        max_message_bytes=settings.max_message_bytes,
    )
