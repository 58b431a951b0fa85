"""First-run smoke: the app's whole flow on an embedded SQS emulator, ending in a short summary.

``python -m <package> smoke``, from the project folder; no Docker, no ``func``:

1. starts moto's server on a free 127.0.0.1 port (or uses ``--endpoint-url``, with
   queues of its own) and creates the queues with ``queues.ensure_queues``;
2. sends realistic work of what feeds the queue (``sample_messages.MESSAGE_SOURCE``): for http,
   POSTs to ``send_message`` and ``send_message_batch`` through real ``func.HttpRequest``
   objects, taken from the FunctionApp the host indexes (for this run the output queue is the
   input queue, so the trigger drains what they sent); for sns, s3 or eventbridge, events
   through the source itself on the emulator (``source_on_emulator``): Publish, PutObject or
   PutEvents, the envelope the source's own;
3. runs ``drain_input_queue_on_timer`` with a real ``TimerRequest`` until the input queue
   is empty: good messages are handled and deleted; the poison one fails on every
   receive, and the redrive policy moves it to the DLQ;
4. prints what happened, and exits 0 only when every count it promised holds.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import azure.functions as func
from azure.functions.timer import TimerRequest
from botocore.exceptions import BotoCoreError, ClientError

from ...engine.queues import QueueSet, is_fifo, queue_depth, queue_name
from ...engine.settings import APP_NAME, Settings, SettingsError, local_settings_path, use_local_settings
from .emulator import EmulatorUnavailable, create_local_queues, start_emulator
from .sample_messages import (
    EVENT_SOURCE,
    MESSAGE_SOURCE,
    POISON_WHY,
    good_message,
    good_payload,
    new_run_id,
    poison_message,
    poison_payload,
    sample_id,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# The app's functions by name, as the FunctionApp the host indexes lists them.
Functions = dict[str | None, Callable[..., Any]]
BATCH_SIZE = 10
GOOD_MESSAGES = 1 + BATCH_SIZE
# No backoff, so a failed message comes back at once; no long poll (it would wait out each
# retry on moto): a drain ends at the first empty receive, and the next tick goes on.
SMOKE_ENVIRONMENT: dict[str, str | None] = {
    "SQS_WAIT_TIME_SECONDS": "0",
    "SQS_RETRY_BACKOFF_BASE_SECONDS": "0",
    "SQS_DRAIN_BUDGET_SECONDS": "60",
}


@dataclass(frozen=True)
class Check:
    label: str
    expected: object
    actual: object

    @property
    def holds(self) -> bool:
        return self.expected == self.actual

    def line(self) -> str:
        if self.holds:
            return f"  ok      {self.label}"
        return f"  FAILED  {self.label}: expected {self.expected}, got {self.actual}"


@dataclass
class SmokeRun:
    endpoint: str
    settings: Settings
    queues: QueueSet
    via: str = "HTTP"  # what the work went through: the send functions, or the message source
    # Each send: the function or the call, its route or target, its answer, what it sent.
    sends: list[tuple[str, str, str, str]] = field(default_factory=list)
    # Messages the source adds of its own (S3's test event), which the handler acknowledges.
    source_extra: int = 0
    ticks: list[dict[str, Any]] = field(default_factory=list)
    dlq_ids: list[str] = field(default_factory=list)
    left: int = -1
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.holds for check in self.checks)

    def total(self, key: str) -> int:
        """A count summed over the drain summaries of every tick."""
        return sum(int(tick[key]) for tick in self.ticks)


class DrainRecorder(logging.Handler):
    """Keeps the trigger's drain summary of each tick (the fields of its "drain finished" record)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.ticks: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "sqs_drain", None)
        if isinstance(fields, dict):
            self.ticks.append(fields)


@contextmanager
def sqs_endpoint(endpoint_url: str | None) -> Iterator[tuple[str, str]]:
    """The endpoint to run against, and what it is; an embedded one stops afterwards."""
    if endpoint_url:
        yield endpoint_url, "the SQS endpoint"
        return
    emulator = start_emulator(port=0)
    try:
        yield emulator.url, "an embedded SQS emulator (moto)"
    finally:
        emulator.stop()


def run_smoke(endpoint: str, settings_path: Path | None, *, own_queues: bool) -> SmokeRun:
    run_id = new_run_id()
    overrides = dict(SMOKE_ENVIRONMENT)
    if own_queues:  # a shared endpoint: never touch the queues a running app uses
        configured = use_local_settings(settings_path)
        overrides |= {
            "SQS_INPUT_QUEUE": smoke_queue_name(configured.input_queue, run_id),
            "SQS_OUTPUT_QUEUE": smoke_queue_name(configured.output_queue, run_id),
            "SQS_DLQ": smoke_queue_name(configured.dlq, run_id),
        }
    settings, queues = create_local_queues(endpoint, settings_path, overrides)
    smoke = SmokeRun(endpoint, settings, queues)
    try:
        _run_flow(smoke, run_id)
    finally:
        if own_queues:
            _delete_queues(smoke)
    return smoke


def _run_flow(smoke: SmokeRun, run_id: str) -> None:
    from function_app import app

    # Loop the output functions back into the input queue, so the trigger drains what they sent.
    settings = use_local_settings(None, {"SQS_OUTPUT_QUEUE": smoke.queues.input_url})
    functions = {f.get_function_name(): f.get_user_function() for f in app.get_functions()}
    if MESSAGE_SOURCE == "http":
        sent = _send_over_http(smoke, functions, run_id)
        _drain(smoke, settings, functions)
    else:
        from .source_on_emulator import source_on_emulator

        with source_on_emulator(
            MESSAGE_SOURCE, settings, smoke.queues.input_url, run_id, EVENT_SOURCE
        ) as source:
            smoke.via, smoke.source_extra = source.label, source.test_events
            sent = 0
            fifo = is_fifo(smoke.queues.input_url)
            batch = [good_payload(run_id, n) for n in range(2, 2 + BATCH_SIZE)]
            events = [
                ([good_payload(run_id, 1)], "smoke", "1 event"),
                (batch, "smoke", f"{BATCH_SIZE} events"),
                ([poison_payload(run_id, 1)], "smoke-poison", f"1 poison event ({POISON_WHY})"),
            ]
            for payloads, group, what in events:
                call = source.send(payloads, group if fifo else "")
                sent += len(payloads)
                smoke.sends.append((call, source.target, "sent", what))
            _drain(smoke, settings, functions)  # while the source is there: it may deliver late
    extra = smoke.source_extra
    handled = f"{GOOD_MESSAGES} good messages" + (" and S3's test event" if extra else "")
    what_sent = "messages sent over HTTP" if smoke.via == "HTTP" else f"events sent through {smoke.via}"
    smoke.checks = [
        Check(f"{GOOD_MESSAGES + 1} {what_sent}", GOOD_MESSAGES + 1, sent),
        Check(f"{handled} handled by the trigger", GOOD_MESSAGES + extra, smoke.total("succeeded")),
        # On FIFO the consumer moves the poison message to the DLQ itself: a delete that is no handling.
        Check(
            f"{GOOD_MESSAGES + extra} handled messages deleted",
            GOOD_MESSAGES + extra,
            smoke.total("deleted") - smoke.total("dead_lettered"),
        ),
        Check(
            f"poison message failed on {settings.max_receive_count} receives (maxReceiveCount)",
            settings.max_receive_count,
            smoke.total("failed"),
        ),
        Check("DLQ holds the poison message, and only it", [f"{run_id}-poison-1"], smoke.dlq_ids),
        Check("input queue empty", 0, smoke.left),
    ]


def _send_over_http(smoke: SmokeRun, functions: Functions, run_id: str) -> int:
    """The sample work POSTed to the send functions; how many messages they sent."""
    fifo = is_fifo(smoke.queues.input_url)
    good_group = {"group_id": "smoke"} if fifo else {}
    poison_group = {"group_id": "smoke-poison"} if fifo else {}
    batch = [json.loads(good_message(run_id, n)) for n in range(2, 2 + BATCH_SIZE)]
    requests = [
        ("send_message", "messages", good_message(run_id, 1), good_group, "1 message"),
        ("send_message_batch", "messages/batch", json.dumps(batch), good_group, f"{BATCH_SIZE} messages"),
        (
            "send_message",
            "messages",
            poison_message(run_id, 1),
            poison_group,
            f"1 poison message ({POISON_WHY})",
        ),
    ]
    sent = 0
    for name, route, body, params, what in requests:
        request = func.HttpRequest(
            method="POST",
            url=f"/api/{route}",
            body=body.encode(),
            params=params,
            headers={"Content-Type": "application/json"},
        )
        response = functions[name](request)
        status = response.status_code
        answer = json.loads(response.get_body() or b"{}")
        sent += int(answer.get("sent", 1)) if status in (200, 202) else 0
        smoke.sends.append((name, f"POST /api/{route}", str(status), what))
    return sent


def _drain(smoke: SmokeRun, settings: Settings, functions: Functions) -> None:
    """The timer's drain, tick after tick, until the input queue is empty; what it did and left."""
    from ...engine import runtime
    from ...engine.aws_session import sqs_client

    client = sqs_client(settings)
    recorder = DrainRecorder()
    trigger_logger = runtime.logger  # report() logs each pass's summary
    trigger_logger.addHandler(recorder)
    trigger_logger.setLevel(logging.INFO)
    timer = functions["drain_input_queue_on_timer"]
    try:
        # Each tick receives the poison message at least once (a drain applies its visibility
        # changes before it ends), so maxReceiveCount + 1 ticks move it to the DLQ; two spare.
        for _ in range(settings.max_receive_count + 3):
            timer(TimerRequest(past_due=False))
            if queue_depth(client, smoke.queues.input_url).backlog == 0:
                break
    finally:
        trigger_logger.removeHandler(recorder)
    smoke.ticks = recorder.ticks
    smoke.dlq_ids = sorted(sample_id(body) for body in peek_bodies(client, smoke.queues.dlq_url))
    smoke.left = queue_depth(client, smoke.queues.input_url).backlog


def peek_bodies(client: SQSClient, url: str) -> list[str]:
    """The bodies on a queue, left in place (hidden for 30 s, so each is read once)."""
    bodies: list[str] = []
    while True:
        messages = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
        ).get("Messages", [])
        if not messages:
            return bodies
        bodies += [message.get("Body", "") for message in messages]


def smoke_queue_name(name: str, run_id: str) -> str:
    """A queue of the smoke's own, named after the configured one (its ".fifo" kept)."""
    fifo = is_fifo(name)
    stem = queue_name(name).removesuffix(".fifo")[: 80 - len(run_id) - 12]
    return f"{stem}-smoke-{run_id}" + (".fifo" if fifo else "")


def _delete_queues(smoke: SmokeRun) -> None:
    from ...engine.aws_session import sqs_client

    client = sqs_client(smoke.settings)
    for url in (smoke.queues.input_url, smoke.queues.output_url, smoke.queues.dlq_url):
        client.delete_queue(QueueUrl=url)


def report(smoke: SmokeRun, label: str, seconds: float) -> str:
    settings, queues = smoke.settings, smoke.queues
    lines = [
        f"Smoke run of {APP_NAME} on {label} at {smoke.endpoint}",
        "",
        f"  queues   input   {queue_name(queues.input_url)} (to the DLQ after "
        f"{settings.max_receive_count} receives)",
        f"           DLQ     {queue_name(queues.dlq_url)}",
        f"           output  {queue_name(queues.output_url)} ("
        + ("this run sends to the input queue instead)" if smoke.via == "HTTP" else "unused by this run)"),
    ]
    column = "Events" if smoke.via == "EventBridge" else smoke.via  # the column's width
    for index, (name, route, status, what) in enumerate(smoke.sends):
        lines.append(f"  {column if index == 0 else '':<7}  {name:<19} {route:<25} {status}  {what}")
    lines += [
        f"  trigger  drain_input_queue_on_timer, {len(smoke.ticks)} tick(s): {smoke.total('received')} "
        f"received, {smoke.total('succeeded')} handled, {smoke.total('deleted')} deleted, "
        f"{smoke.total('failed')} failed",
        "",
        *(check.line() for check in smoke.checks),
        "",
    ]
    if smoke.passed:
        lines.append(
            f"PASSED in {seconds:.1f} s: {GOOD_MESSAGES + 1} sent, {smoke.total('succeeded')} handled, "
            f"{len(smoke.dlq_ids)} in the DLQ, {smoke.left} left."
        )
        lines.append('Next: run it under the Functions host, see README.md, "Run locally".')
    else:
        failed = sum(not check.holds for check in smoke.checks)
        lines.append(f"FAILED: {failed} of {len(smoke.checks)} checks did not hold.")
        if smoke.total("succeeded") == 0:
            lines.append(
                "No message was handled: if you changed the message model in handler.py, "
                "change sample_messages.py to match; --verbose shows the handler's errors."
            )
    return "\n".join(lines)


def run_and_report(endpoint_url: str | None, settings_file: str | None, verbose: bool) -> int:
    """The whole flow, then a summary; exit code 0 when every count holds. ``python -m <package> smoke``."""
    _configure_logging(verbose)
    started = time.monotonic()
    try:
        settings_path = local_settings_path(settings_file)
        with sqs_endpoint(endpoint_url) as (endpoint, label):
            smoke = run_smoke(endpoint, settings_path, own_queues=bool(endpoint_url))
    except (EmulatorUnavailable, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"error: SQS call failed: {error}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as error:
        if error.name != "function_app":
            raise
        print("error: run the smoke from the project folder (where function_app.py is)", file=sys.stderr)
        return 2
    print(report(smoke, label, time.monotonic() - started))
    return 0 if smoke.passed else 1


def _configure_logging(verbose: bool) -> None:
    """Quiet by default: the summary tells the story; --verbose shows the app's own logs.

    The level goes on the handler: the smoke's recorder raises the trigger's logger to INFO.
    """
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO if verbose else logging.CRITICAL)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("botocore", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
