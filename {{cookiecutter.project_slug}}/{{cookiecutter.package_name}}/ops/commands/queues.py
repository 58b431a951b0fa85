"""The queue commands: ``drain``, ``send``, ``stats``, ``redrive``; they read the app's settings
from the environment, as the functions do in Azure, or from ``--settings FILE`` (``local.settings.json``,
for the local emulator's queues) the way ``func start`` does."""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from ...engine.consumer.drain_pass import PROGRESS_EVERY_SECONDS
from .common import (
    EXIT_OK,
    EXIT_PARTLY,
    BadInput,
    add_settings_file_option,
    emit,
    progress,
    queue_settings,
    resolve_queue,
)

if TYPE_CHECKING:
    from ...engine.consumer import DrainSummary, Handler
    from ...engine.producer import OutgoingMessage, Sender
    from .common import Commands

SEND_CHUNK = 100


def register_drain(commands: Commands) -> None:
    parser = commands.add_parser(
        "drain", help="one drain pass of the input queue with the app's handler; prints its summary"
    )
    parser.add_argument(
        "--budget-seconds",
        help="stop receiving after this long (SQS_DRAIN_BUDGET_SECONDS); however long, no message is "
        "held past 12 h from its receive (SQS's limit)",
    )
    parser.add_argument("--max-concurrency", help="handlers at once (SQS_MAX_CONCURRENCY)")
    parser.add_argument("--wait-time-seconds", help="longest long-poll wait, 0-20 (SQS_WAIT_TIME_SECONDS)")
    parser.add_argument(
        "--linger-seconds", help="go on this long once the queue looks empty (SQS_LINGER_SECONDS)"
    )
    parser.add_argument(
        "--progress-every",
        type=float,
        default=PROGRESS_EVERY_SECONDS,
        help="seconds between progress lines (default: %(default)g)",
    )
    parser.add_argument(
        "--handler",
        metavar="MODULE:FUNCTION",
        help="another handler to drain with, a function or an async def"
        " (default: the app's handler.handle_message)",
    )
    add_settings_file_option(parser)
    parser.set_defaults(run=run_drain)


def load_handler(spec: str) -> Handler:
    module_name, colon, name = spec.partition(":")
    if not module_name or not colon or not name:
        raise BadInput(f"--handler {spec!r}: expected MODULE:FUNCTION")
    try:
        handler = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise BadInput(f"--handler {spec!r}: {error}") from None
    if not callable(handler):
        raise BadInput(f"--handler {spec!r} is not a function")
    return cast("Handler", handler)


def run_drain(args: argparse.Namespace) -> int:
    from ...engine.runtime import drain_input_queue

    handler = load_handler(args.handler) if args.handler else None
    settings = queue_settings(
        args,
        {
            "SQS_DRAIN_BUDGET_SECONDS": args.budget_seconds,
            "SQS_MAX_CONCURRENCY": args.max_concurrency,
            "SQS_WAIT_TIME_SECONDS": args.wait_time_seconds,
            "SQS_LINGER_SECONDS": args.linger_seconds,
        },
    )
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        progress(f"drain: {signal.Signals(signum).name}; finishing running handlers (again to abort)")
        stop.set()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def report(summary: DrainSummary) -> None:
        progress(
            f"drain: {summary.duration_seconds:.0f}s received {summary.received}"
            f" succeeded {summary.succeeded} failed {summary.failed} deleted {summary.deleted}"
        )

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = drain_input_queue(
            settings,
            handler=handler,
            stop=stop,
            progress=report,
            progress_every_seconds=args.progress_every,
        )
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
    emit(summary.as_log_fields())
    if summary.problem:
        progress(f"error: {summary.problem}")
        return EXIT_PARTLY
    return EXIT_OK


def register_send(commands: Commands) -> None:
    parser = commands.add_parser(
        "send", help="send one message, or a JSON-lines file (one message per line) in batches"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--body", help="the message body, as is")
    source.add_argument("--file", type=Path, help="a JSON-lines file; '-' reads standard input")
    parser.add_argument("--queue", default="output", help="input, output, dlq, or a queue name or URL")
    parser.add_argument("--group-id", help="MessageGroupId (FIFO queues)")
    parser.add_argument("--deduplication-id", help="MessageDeduplicationId (FIFO, one message)")
    parser.add_argument(
        "--delay-seconds", type=int, default=0, help="delivery delay, 0-900 (standard queues)"
    )
    parser.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a String message attribute; repeat for more",
    )
    add_settings_file_option(parser)
    parser.set_defaults(run=run_send)


def run_send(args: argparse.Namespace) -> int:
    from ...engine.producer import MessageRejected, OutgoingMessage, Sender

    attributes: dict[str, Any] = {}
    for pair in args.attribute:
        name, equals, value = pair.partition("=")
        if not name or not equals:
            raise BadInput(f"--attribute {pair!r}: expected NAME=VALUE")
        attributes[name] = {"DataType": "String", "StringValue": value}
    bodies = [args.body] if args.body is not None else list(json_lines(args.file))
    if args.deduplication_id and len(bodies) > 1:
        raise BadInput("--deduplication-id applies to one message; a file would send them all as one")
    messages = [
        OutgoingMessage(
            body=body,
            attributes=attributes,
            delay_seconds=args.delay_seconds,
            group_id=args.group_id,
            deduplication_id=args.deduplication_id,
        )
        for body in bodies
    ]
    from ...engine.aws_session import sqs_client

    settings = queue_settings(args, {})
    url = resolve_queue(settings, args.queue)
    sender = Sender(sqs_client(settings), url, max_message_bytes=settings.max_message_bytes)
    if args.body is not None:
        try:
            message_id = sender.send(messages[0])
        except MessageRejected as error:
            raise BadInput(str(error)) from None
        emit({"queue": url, "sent": 1, "failed": 0, "message_id": message_id, "failures": []})
        return EXIT_OK
    return send_in_chunks(sender, url, messages)


def send_in_chunks(sender: Sender, url: str, messages: list[OutgoingMessage]) -> int:
    sent = 0
    failures: list[dict[str, object]] = []
    for start in range(0, len(messages), SEND_CHUNK):
        result = sender.send_batch(messages[start : start + SEND_CHUNK])
        sent += result.sent
        failures += [
            {"line": start + f.index + 1, "code": f.code, "reason": f.reason, "retryable": not f.sender_fault}
            for f in result.failures
        ]
        if len(messages) > SEND_CHUNK:
            done = min(start + SEND_CHUNK, len(messages))
            progress(f"send: {done} of {len(messages)} ({len(failures)} failed)")
    emit({"queue": url, "sent": sent, "failed": len(failures), "failures": failures})
    return EXIT_PARTLY if failures else EXIT_OK


def json_lines(path: Path) -> Iterator[str]:
    """Each non-blank line, checked to be one JSON document; a bad line refuses the whole file."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"cannot read {path}: {error}") from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise BadInput(f"{path} holds no message")
    for number, line in lines:
        try:
            json.loads(line)
        except ValueError as error:
            raise BadInput(f"{path} line {number} is not JSON: {error}") from None
    return (line for _, line in lines)


def register_stats(commands: Commands) -> None:
    parser = commands.add_parser(
        "stats", help="depth, in-flight count and age of the oldest message, for a queue and its DLQ"
    )
    parser.add_argument("--queue", default="input", help="input, output, or a queue name or URL")
    add_settings_file_option(parser)
    parser.set_defaults(run=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    from ...engine.aws_session import cloudwatch_client, sqs_client
    from ...engine.queues import dead_letter_queue_url
    from ..queue_ops import queue_stats

    settings = queue_settings(args, {})
    sqs, cloudwatch = sqs_client(settings), cloudwatch_client(settings)
    url = resolve_queue(settings, args.queue)
    dlq = dead_letter_queue_url(sqs, url)
    if dlq is None and args.queue == "input" and settings.dlq:
        dlq = resolve_queue(settings, "dlq")
    emit(
        {
            "queue": asdict(queue_stats(sqs, cloudwatch, url)),
            "dlq": asdict(queue_stats(sqs, cloudwatch, dlq)) if dlq else None,
        }
    )
    return EXIT_OK


def register_redrive(commands: Commands) -> None:
    parser = commands.add_parser("redrive", help="move messages from the DLQ back to the input queue")
    parser.add_argument(
        "--method",
        choices=["auto", "move-task", "loop"],
        default="auto",
        help="auto: StartMessageMoveTask where supported, else receive/send/delete",
    )
    parser.add_argument("--max-messages", type=int, help="move at most this many (uses the loop)")
    parser.add_argument("--to", default="input", help="target: input, or a queue name or URL")
    add_settings_file_option(parser)
    parser.set_defaults(run=run_redrive)


def run_redrive(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ...engine.aws_session import sqs_client
    from ..queue_ops import redrive

    if args.max_messages is not None and args.max_messages < 1:
        raise BadInput("--max-messages must be at least 1")
    if args.max_messages is not None and args.method == "move-task":
        raise BadInput("--max-messages needs --method loop or auto: a move task moves every message")
    settings = queue_settings(args, {})
    dlq = resolve_queue(settings, "dlq")
    target = resolve_queue(settings, args.to)
    if dlq == target:
        raise BadInput("the DLQ and the target are the same queue")
    result = redrive(
        sqs_client(settings),
        dlq,
        target,
        method=args.method,
        max_messages=args.max_messages,
        max_message_bytes=settings.max_message_bytes,
        progress=lambda text: progress(f"redrive: {text}"),
        probe=sqs_client(replace(settings, max_attempts=1)),
    )
    emit({"dlq": dlq, "target": target, **asdict(result)})
    return EXIT_OK if result.status == "COMPLETED" and not result.failed else EXIT_PARTLY


REGISTER: list[Callable[[Commands], None]] = [register_drain, register_send, register_stats, register_redrive]
