"""A real SQS endpoint over HTTP on 127.0.0.1, and the app's settings pointed at it; Azurite for storage.

By default a moto server starts for the session and stops after it. Set
``SQS_TEST_ENDPOINT_URL`` (for example ``http://127.0.0.1:4566``) to run the same
tests against a running LocalStack instead. Tests that use Azure Storage get a
private Azurite (npm, pinned) on free ports, started once per session.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.decorators.function_app import Function as IndexedFunction
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.engine.aws_session import reset_clients, sqs_client
from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage
from {{ cookiecutter.package_name }}.engine.queues import QueueSet, ensure_queues, is_fifo, queue_arn
from {{ cookiecutter.package_name }}.engine.queues import queue_depth as queue_depth  # noqa: PLC0414 (the tests' import)
from {{ cookiecutter.package_name }}.engine.settings import Settings
from {{ cookiecutter.package_name }}.ops.local_dev.azurite import Azurite, start_azurite
from {{ cookiecutter.package_name }}.ops.local_dev.emulator import start_emulator
from {{ cookiecutter.package_name }}.ops.local_dev.sample_messages import MESSAGE_SOURCE, envelope

CONFIGURED_QUEUES = {
    "SQS_INPUT_QUEUE": "{{ cookiecutter.input_queue_name }}",
    "SQS_OUTPUT_QUEUE": "{{ cookiecutter.output_queue_name }}",
    "SQS_DLQ": "{{ cookiecutter.dlq_name }}",
}


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    external = os.environ.get("SQS_TEST_ENDPOINT_URL")
    if external:
        yield external
        return
    # The app's own embedded emulator, on a free port (quiet: a line per request slows tests).
    emulator = start_emulator(port=0)
    try:
        yield emulator.url
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """Azure Storage (blob, queue, table) on 127.0.0.1, in memory, for the whole session."""
    storage = start_azurite()
    try:
        yield storage
    finally:
        storage.stop()


@pytest.fixture
def storage_connection(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> str:
    """``AzureWebJobsStorage`` pointed at the session's Azurite, as ``func start`` would export it."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    return azurite.connection_string


@dataclass(frozen=True)
class AppUnderTest:
    settings: Settings
    client: SQSClient
    queues: QueueSet


def unique(name: str, suffix: str) -> str:
    """The configured queue name made unique per test, keeping its '.fifo' ending."""
    stem = name.removesuffix(".fifo")[: 80 - len(suffix) - 6]
    return f"{stem}-{suffix}" + (".fifo" if is_fifo(name) else "")


@pytest.fixture
def hook_without_azd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The AWS deploy step as a test runs it: no azd or az on PATH, so nothing is written to an azd
    environment or a function app; the deployer's login (the emulator's keys) found by boto3's default
    chain, as a profile or SSO would be."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


@pytest.fixture
def app_env(sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppUnderTest]:
    """Fresh queues for one test, with the app's settings (environment) pointing at them."""
    suffix = uuid.uuid4().hex[:8]
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL_SQS", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    environment = {
        **{key: unique(name, suffix) for key, name in CONFIGURED_QUEUES.items()},
        "AWS_ENDPOINT_URL": sqs_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_AUTH_MODE": "default_chain",
        "SQS_MAX_RECEIVE_COUNT": "3",
        "SQS_WAIT_TIME_SECONDS": "1",
        "SQS_DRAIN_BUDGET_SECONDS": "30",
        "SQS_VISIBILITY_TIMEOUT_SECONDS": "30",
        "SQS_RETRY_BACKOFF_BASE_SECONDS": "0",
        "SQS_POLL_SCHEDULE": "0 */1 * * * *",
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    reset_clients()
    settings = Settings.from_env()
    client = sqs_client(settings)
    queues = ensure_queues(client, settings)
    yield AppUnderTest(settings, client, queues)
    for url in (queues.input_url, queues.output_url, queues.dlq_url):
        client.delete_queue(QueueUrl=url)
    reset_clients()


@pytest.fixture(scope="session")
def indexed() -> dict[str, IndexedFunction]:
    """The FunctionApp's functions by name, as the host indexes them.

    Session-scoped: like the host, index once (``get_functions`` refuses a second call).
    """
    from function_app import app

    return {f.get_function_name(): f for f in app.get_functions()}


@pytest.fixture(scope="session")
def functions(indexed: dict[str, IndexedFunction]) -> dict[str, Callable[..., object]]:
    """The app's functions by name, taken from the FunctionApp the host indexes."""
    return {name: f.get_user_function() for name, f in indexed.items()}


@pytest.fixture(scope="session")
def anonymous_sends(indexed: dict[str, IndexedFunction]) -> bool:
    """Whether the host lets anyone call the send functions: the bake's ``http_auth_level``."""
    trigger = indexed["send_message"].get_trigger()
    return getattr(trigger, "auth_level", None) is func.AuthLevel.ANONYMOUS


def drain_all(client: SQSClient, url: str) -> list[str]:
    """Every body on a queue, deleting as it goes (test observer, not the app's consumer)."""
    bodies: list[str] = []
    while True:
        messages = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
        ).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def http_post(
    route: str, body: bytes, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> func.HttpRequest:
    return func.HttpRequest(
        method="POST", url=f"/api/{route}", body=body, params=params or {}, headers=headers or {}
    )


def send_params(queue: str) -> dict[str, str]:
    """Query parameters a send needs for this queue kind (FIFO needs a group)."""
    return {"group_id": "tests"} if is_fifo(queue) else {}


@dataclass(frozen=True)
class QueuePair:
    url: str
    dlq_url: str


MakeQueue = Callable[..., QueuePair]


@pytest.fixture
def make_queue(app_env: AppUnderTest) -> Iterator[MakeQueue]:
    """Makes a queue with its DLQ, as a test needs them (FIFO or not); deletes them after."""
    client = app_env.client
    created: list[str] = []

    def make(
        *,
        fifo: bool = False,
        content_based_deduplication: bool = True,
        max_receive_count: int = 3,
        visibility_timeout: int = 30,
    ) -> QueuePair:
        name = f"t-{uuid.uuid4().hex[:12]}"
        ending = ".fifo" if fifo else ""
        dedup = str(content_based_deduplication).lower()
        kind = {"FifoQueue": "true", "ContentBasedDeduplication": dedup} if fifo else {}
        dlq_url = client.create_queue(QueueName=f"{name}-dlq{ending}", Attributes=kind)["QueueUrl"]
        created.append(dlq_url)
        redrive = {
            "deadLetterTargetArn": queue_arn(client, dlq_url),
            "maxReceiveCount": str(max_receive_count),
        }
        url = client.create_queue(
            QueueName=f"{name}{ending}",
            Attributes={
                **kind,
                "VisibilityTimeout": str(visibility_timeout),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        created.append(url)
        return QueuePair(url, dlq_url)

    yield make
    for url in created:
        client.delete_queue(QueueUrl=url)


@dataclass
class Recorder:
    """A handler's view of what it was given: every call, thread-safe."""

    calls: list[tuple[str, int]] = field(default_factory=list)
    succeeded: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def called(self, message: SqsMessage) -> None:
        with self.lock:
            self.calls.append((message.body, message.receive_count))

    def success(self, message: SqsMessage) -> None:
        with self.lock:
            self.succeeded.append(message.body)

    def duplicates(self) -> int:
        """Successful handlings beyond the first of each message."""
        return sum(count - 1 for count in Counter(self.succeeded).values())


class BatchEntryFaults:
    """Makes SQS answer chosen entries of a batch call as failed, on the app's real client.

    No emulator fails one entry of a batch on its own side (``SenderFault=false``, an
    SQS internal error). So this takes each chosen entry out of the real request before
    it is sent, and adds it to the real response's ``Failed`` list, as SQS reports an
    entry it could not handle. Every other entry goes to the emulator and back as is,
    and nothing the code under test does is replaced. A call whose every entry is chosen
    is sent as is (SQS refuses an empty batch), unless ``whole_calls``: then it is answered
    at botocore's ``before-call``, unsent, with every entry failed, as SQS answers when it
    refuses them all.
    """

    def __init__(
        self,
        client: SQSClient,
        operation: str,
        choose: Callable[[dict[str, object]], bool],
        *,
        times: int = 1,
        sender_fault: bool = False,
        code: str = "InternalError",
        whole_calls: bool = False,
    ) -> None:
        self.client = client
        self.whole_calls = whole_calls
        self.operation = operation
        self.choose = choose
        self.remaining = times
        self.sender_fault = sender_fault
        self.code = code
        self.injected: list[str] = []
        self.lock = threading.Lock()
        self.context_key = f"injected-failures-{id(self)}"
        client.meta.events.register(f"before-parameter-build.sqs.{operation}", self._take_out)
        client.meta.events.register(f"before-call.sqs.{operation}", self._answer_unsent)
        client.meta.events.register(f"after-call.sqs.{operation}", self._report)

    def _take_out(self, params: dict[str, object], context: dict[str, object], **_: object) -> None:
        entries = list(params["Entries"])  # type: ignore[call-overload]
        with self.lock:
            chosen = [e for e in entries if self.choose(e)][: self.remaining]
            if not chosen or (len(chosen) == len(entries) and not self.whole_calls):
                return
            self.remaining -= len(chosen)
            self.injected += [str(e.get("MessageBody", e["Id"])) for e in chosen]
        if len(chosen) < len(entries):
            params["Entries"] = [e for e in entries if e not in chosen]
        else:  # SQS refuses an empty batch: this call is answered unsent
            context[f"{self.context_key}-unsent"] = True
        context[self.context_key] = [e["Id"] for e in chosen]

    def _answer_unsent(
        self, context: dict[str, object], **_: object
    ) -> tuple[object, dict[str, object]] | None:
        if not context.pop(f"{self.context_key}-unsent", False):
            return None
        from botocore.awsrequest import AWSResponse

        return AWSResponse(None, 200, {}, None), {"Successful": [], "Failed": []}

    def _report(self, parsed: dict[str, list[object]], context: dict[str, object], **_: object) -> None:
        for entry_id in context.pop(self.context_key, []):  # type: ignore[attr-defined]
            parsed.setdefault("Failed", []).append(
                {"Id": entry_id, "SenderFault": self.sender_fault, "Code": self.code, "Message": "injected"}
            )

    def remove(self) -> None:
        self.client.meta.events.unregister(f"before-parameter-build.sqs.{self.operation}", self._take_out)
        self.client.meta.events.unregister(f"before-call.sqs.{self.operation}", self._answer_unsent)
        self.client.meta.events.unregister(f"after-call.sqs.{self.operation}", self._report)


def count_requests(client: SQSClient, operation: str) -> Counter[str]:
    """Counts the HTTP requests of ``operation`` the client sends (retries included)."""
    counts: Counter[str] = Counter()

    def count(**_: object) -> None:
        counts[operation] += 1

    client.meta.events.register(
        f"before-send.sqs.{operation}", count, unique_id=f"count-{operation}-{id(counts)}"
    )
    return counts


def work_body(item_id: str) -> str:
    """A body the app's own handler (handler.py) takes, with this ID, in the envelope of its message_source
    ({{ cookiecutter.message_source }}: sample_messages.envelope)."""
    if MESSAGE_SOURCE == "s3":
        return envelope(f"incoming/{item_id}.json")  # the handler's OrderFile: a JSON file under incoming/
    return envelope(json.dumps({"id": item_id, "action": "work"}))


def handled_ids(records: list[logging.LogRecord]) -> list[str]:
    """The IDs of ``work_body``s in handler.py's log lines of handled messages."""
    ids = []
    for record in records:
        args = record.args if isinstance(record.args, tuple) else ()
        if str(record.msg).startswith("order file"):  # s3: its bucket, then its key
            ids.append(str(args[1]).rsplit("/", 1)[-1].removesuffix(".json"))
        elif str(record.msg).startswith("processed work item"):
            ids.append(str(args[0]))
    return ids
