"""``@idempotent()`` against Azurite (tables) and the SQS emulator over HTTP, through the app's real drain.

Time windows are moved with an injectable clock, or kept small with the settings;
nothing here asserts how fast anything is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy
from azure.core.rest import HttpRequest
from azure.data.tables import TableClient

from {{ cookiecutter.package_name }}.engine import consumer
from {{ cookiecutter.package_name }}.engine.consumer import DrainSummary, Handler, SqsMessage
from {{ cookiecutter.package_name }}.engine.idempotency import AttemptInProgress, TableStore, idempotent, table_client
from {{ cookiecutter.package_name }}.engine.idempotency.record import Record, Status, Verdict
from {{ cookiecutter.package_name }}.engine.idempotency.table_store import Claim, table_key
from {{ cookiecutter.package_name }}.engine.queues import is_fifo
from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue
from {{ cookiecutter.package_name }}.engine.settings import IdempotencySettings, Settings, SettingsError

from .conftest import AppUnderTest, MakeQueue, drain_all, queue_depth

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment


def table_call(http: HttpRequest) -> str:
    """What a table request does: create_table, insert, read, query, complete, update (other), delete."""
    path = http.url.split("?", 1)[0]
    if path.rstrip("/").endswith("/Tables"):
        return "create_table"
    kind = {"POST": "insert", "GET": "read", "PUT": "update", "DELETE": "delete"}[http.method]
    if kind == "update" and '"Status": "complete"' in str(http.body):
        return "complete"
    return "query" if kind == "read" and "PartitionKey=" not in path else kind


@dataclass
class TableRequests:
    """Every HTTP request a table client sends (retries included), by kind: an azure-core hook."""

    kinds: Counter[str] = field(default_factory=Counter)
    threads: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: PipelineRequest[Any]) -> None:
        kind = table_call(request.http_request)
        with self.lock:
            self.kinds[kind] += 1
            self.threads.add(threading.current_thread().name)

    def total(self) -> int:
        return sum(self.kinds.values())


class TableFaults(HTTPPolicy[HttpRequest, Any]):
    """Table calls that fail, as an azure-core per-call policy (``per_call_policies=[...]``).

    A per-call policy runs before the SDK's retry policy, so what it raises is what the caller
    sees once the SDK has retried and given up. ``fail[kind]`` calls of a kind fail before they
    are sent (storage unreachable); kinds in ``down`` fail until taken out; ``lose_answer[kind]``
    calls are sent and land, and then their answer is lost (the connection dropped).
    """

    def __init__(self) -> None:
        super().__init__()
        self.fail: Counter[str] = Counter()
        self.down: set[str] = set()
        self.lose_answer: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.lock = threading.Lock()

    def send(self, request: PipelineRequest[HttpRequest]) -> PipelineResponse[HttpRequest, Any]:
        kind = table_call(request.http_request)
        with self.lock:
            refuse = kind in self.down or self.fail[kind] > 0
            lose = not refuse and self.lose_answer[kind] > 0
            if refuse or lose:
                self.failed[kind] += 1
                counter = self.lose_answer if lose else self.fail
                counter[kind] = max(counter[kind] - 1, 0)
        if refuse:
            raise ServiceRequestError(f"injected: table storage unreachable ({kind})")
        response = self.next.send(request)
        if lose:
            raise ServiceResponseError(f"injected: the answer to a {kind} was lost")
        return response


@pytest.fixture
def table_name(storage_connection: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh table per test (created by the first claim), deleted afterwards."""
    name = f"idem{uuid.uuid4().hex[:16]}"
    monkeypatch.setenv("IDEMPOTENCY_TABLE", name)
    yield name
    TableClient.from_connection_string(storage_connection, name).delete_table()


def send(app_env: AppUnderTest, *bodies: str) -> None:
    """On FIFO each message gets a group of its own (so duplicates can run at once) and a
    deduplication ID of its own (so SQS does not drop a duplicate before the handler sees it)."""
    url = app_env.queues.input_url
    for body in bodies:
        fifo = {"MessageGroupId": uuid.uuid4().hex, "MessageDeduplicationId": uuid.uuid4().hex}
        app_env.client.send_message(QueueUrl=url, MessageBody=body, **(fifo if is_fifo(url) else {}))


def drain_until_empty(
    app_env: AppUnderTest, handler: Handler, settings: Settings | None = None
) -> list[DrainSummary]:
    summaries = []
    for _ in range(8):
        summaries.append(drain_input_queue(settings or app_env.settings, handler=handler))
        if queue_depth(app_env.client, app_env.queues.input_url).backlog == 0:
            break
    return summaries


def claimed(store: TableStore, key: str, message_id: str, scope: str = "expiry") -> Claim:
    claim = store.claim(key, scope, message_id)
    assert claim is not None
    return claim


def by_id(message: SqsMessage) -> str:
    return str(message.json()["id"])


def record_of(table: str, connection: str, key: str, scope: str) -> dict[str, Any]:
    return dict(
        TableClient.from_connection_string(connection, table).get_entity(table_key(key), table_key(scope))
    )


# With SQS and Table storage.
def test_a_duplicate_delivery_runs_the_body_once(app_env: AppUnderTest, table_name: str) -> None:
    runs: Counter[str] = Counter()
    lock = threading.Lock()

    @idempotent(key=by_id)
    def ship(message: SqsMessage) -> None:
        with lock:
            runs[by_id(message)] += 1

    @idempotent()  # by message ID: the same message delivered again
    def record_message(message: SqsMessage) -> None:
        with lock:
            runs[message.message_id] += 1

    def handler(message: SqsMessage) -> None:
        ship(message)
        record_message(message)
        if message.receive_count == 1:
            raise RuntimeError("stands in for a lost delete: SQS delivers this message again")

    send(app_env, *(json.dumps({"id": f"order-{n}", "action": "ship"}) for n in (1, 2, 1, 3, 1)))
    summaries = drain_until_empty(app_env, handler)

    assert sum(s.failed for s in summaries) == 5  # each message's first receive
    assert sum(s.succeeded for s in summaries) == 5  # each message's second, with both bodies skipped
    ids = {key for key in runs if not key.startswith("order-")}
    assert len(ids) == 5
    assert {key: runs[key] for key in ("order-1", "order-2", "order-3")} == {
        "order-1": 1,
        "order-2": 1,
        "order-3": 1,
    }
    assert all(runs[message_id] == 1 for message_id in ids)
    assert drain_all(app_env.client, app_env.queues.dlq_url) == []


CRASHING_DRAIN = """
import os, signal, sys
from pathlib import Path
from {{ cookiecutter.package_name }}.engine.idempotency import idempotent
from {{ cookiecutter.package_name }}.engine.queues import is_fifo
from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue

@idempotent(scope="crash-test")
def handle(message):
    Path(sys.argv[1]).write_text(message.message_id)
    os.kill(os.getpid(), signal.SIGKILL)  # a crash inside the body: no release, no ack, nothing

drain_input_queue(handler=handle)
"""


def test_a_crash_inside_the_body_lets_a_later_delivery_run_it_once_the_lease_lapses(
    app_env: AppUnderTest, table_name: str, storage_connection: str, tmp_path: Path
) -> None:
    send(app_env, json.dumps({"id": "order-1", "action": "ship"}))
    started = tmp_path / "started"
    # The crashing drain's messages come back 2 s after its last heartbeat.
    env = {**os.environ, "SQS_VISIBILITY_TIMEOUT_SECONDS": "2"}
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_DRAIN, str(started)], cwd=PROJECT, env=env, timeout=120, check=False
    )
    assert crashed.returncode == -9
    message_id = started.read_text()
    left = record_of(table_name, storage_connection, message_id, "crash-test")
    assert (left["Status"], left["Attempt"]) == (Status.IN_PROGRESS.value, 1)

    raw = app_env.client.receive_message(
        QueueUrl=app_env.queues.input_url, WaitTimeSeconds=10, VisibilityTimeout=30, AttributeNames=["All"]
    )["Messages"]
    redelivered = SqsMessage.from_sqs(raw[0])
    assert (redelivered.message_id, redelivered.receive_count) == (message_id, 2)
    clock = Clock()
    runs: list[str] = []

    @idempotent(scope="crash-test", store=TableStore.from_environment(clock=clock))
    def handle(message: SqsMessage) -> None:
        runs.append(message.message_id)

    clock.set(left["LeaseUntil"] - timedelta(seconds=1))  # the crashed attempt's lease still runs
    with pytest.raises(AttemptInProgress, match="is held by message"):
        handle(redelivered)
    assert runs == []
    clock.set(left["LeaseUntil"] + timedelta(seconds=1))  # lapsed: this delivery takes over
    handle(redelivered)
    handle(redelivered)  # and once complete, a further delivery skips the body
    assert runs == [message_id]
    done = record_of(table_name, storage_connection, message_id, "crash-test")
    assert (done["Status"], done["Attempt"]) == (Status.COMPLETE.value, 2)


def test_two_drains_at_once_never_both_run_the_same_key(app_env: AppUnderTest, table_name: str) -> None:
    keys = [f"order-{n}" for n in range(5)]
    send(app_env, *(json.dumps({"id": key, "action": "ship"}) for key in keys * 2))
    refused = {key: threading.Event() for key in keys}
    running: Counter[str] = Counter()
    overlaps: list[str] = []
    runs: Counter[str] = Counter()
    lock = threading.Lock()

    @idempotent(key=by_id)
    def ship(message: SqsMessage) -> None:
        key = by_id(message)
        with lock:
            running[key] += 1
            if running[key] > 1:
                overlaps.append(key)
        # Hold the key until its twin has tried it (or 10 s pass: then there was no concurrency).
        refused[key].wait(timeout=10)
        with lock:
            running[key] -= 1
            runs[key] += 1

    def handler(message: SqsMessage) -> None:
        try:
            ship(message)
        except AttemptInProgress:
            refused[by_id(message)].set()
            raise

    # Every message in flight at once; a refused twin comes back a second later, when its key is done.
    settings = replace(app_env.settings, max_concurrency=10, retry_backoff_base_seconds=1)
    summaries: list[DrainSummary] = []
    drains = [
        threading.Thread(target=lambda: summaries.extend(drain_until_empty(app_env, handler, settings)))
        for _ in range(2)
    ]
    for drain in drains:
        drain.start()
    for drain in drains:
        drain.join(timeout=120)

    assert overlaps == []
    assert runs == Counter(dict.fromkeys(keys, 1))
    assert all(event.is_set() for event in refused.values()), "each twin was tried while its key was held"
    assert sum(s.succeeded for s in summaries) == 10
    assert queue_depth(app_env.client, app_env.queues.input_url).backlog == 0
    assert drain_all(app_env.client, app_env.queues.dlq_url) == []


def test_concurrent_claims_of_one_key_have_exactly_one_winner_when_new_and_when_taken_over(
    table_name: str,
) -> None:
    clock = Clock()
    store = TableStore.from_environment(clock=clock)
    warm_up = store.claim("warm-up", "race", "m-0")  # creates the table: the racers race for the key alone
    assert warm_up is not None
    store.abandon(warm_up)

    def winners(key: str) -> int:
        start = threading.Barrier(8)
        claims: list[Claim] = []
        refusals: list[AttemptInProgress] = []

        def claim(n: int) -> None:
            start.wait()
            try:
                won = store.claim(key, "race", f"m-{n}")
                assert won is not None
                claims.append(won)
            except AttemptInProgress as refused:
                refusals.append(refused)

        racers = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
        assert len(claims) + len(refusals) == 8
        for won in claims:
            store.abandon(won)  # like a crash: the lease will lapse
        return len(claims)

    assert [winners(f"key-{n}") for n in range(3)] == [1, 1, 1]
    clock.set(clock.now + timedelta(seconds=store.settings.in_progress_seconds + 1))
    # Every lease has lapsed: the racers compete to take each key over.
    assert [winners(f"key-{n}") for n in range(3)] == [1, 1, 1]


def test_an_expired_record_runs_again_and_purge_deletes_only_expired_ones(
    app_env: AppUnderTest, table_name: str, storage_connection: str
) -> None:
    clock = Clock()
    store = TableStore.from_environment(clock=clock)
    ttl = timedelta(seconds=store.settings.ttl_seconds)
    runs: list[str] = []

    @idempotent(key=by_id, scope="expiry", store=store)
    def ship(message: SqsMessage) -> None:
        runs.append(by_id(message))

    body = json.dumps({"id": "order-1", "action": "ship"})
    started = clock.now
    for offset in (timedelta(0), ttl - timedelta(seconds=1), ttl + timedelta(seconds=1)):
        clock.set(started + offset)
        send(app_env, body)
        drain_until_empty(app_env, ship)
    assert runs == ["order-1", "order-1"]  # the duplicate within the TTL was skipped; the later one ran
    assert record_of(table_name, storage_connection, "order-1", "expiry")["ExpiresAt"] > started + 2 * ttl

    for key, message_id in (("order-2", "m-2"), ("order-3", "m-3")):
        store.complete(claimed(store, key, message_id))
    clock.set(clock.now + ttl + timedelta(seconds=1))
    store.complete(claimed(store, "order-3", "m-4"))  # expired, then claimed again: purge keeps it
    assert store.purge_expired() == {"deleted": 2, "kept": 0}
    remaining = TableClient.from_connection_string(storage_connection, table_name).list_entities()
    assert sorted(e["PartitionKey"] for e in remaining) == ["order-3"]


def test_the_purge_command_deletes_records_past_their_ttl(
    table_name: str, storage_connection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDEMPOTENCY_TTL_SECONDS", "1")
    store = TableStore.from_environment()
    for n in range(3):
        store.complete(claimed(store, f"order-{n}", f"m-{n}", "purge"))
    threading.Event().wait(1.5)  # past the 1 s TTL
    env = {**os.environ, "AzureWebJobsStorage": storage_connection}
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "idempotency", "purge", "--settings", ""]
    result = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    idempotency = {key: printed[key] for key in ("table", "deleted", "kept")}
    assert idempotency == {"table": table_name, "deleted": 3, "kept": 0}
    # And the FIFO attempt ledger's expired records (tests/test_fifo_attempts_across_passes.py).
    assert printed["attempt_ledger"]["table"] == "sqsattempts"


def test_the_purge_command_reads_a_settings_file_only_when_asked(
    table_name: str, storage_connection: str, tmp_path: Path
) -> None:
    """As the queue commands: an operator's shell beside ./local.settings.json must not reach the
    emulator's storage through it (ops/commands/common.py)."""
    settings = {"IsEncrypted": False, "Values": {"AzureWebJobsStorage": storage_connection}}
    (tmp_path / "local.settings.json").write_text(json.dumps(settings), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AzureWebJobsStorage")}
    env["PYTHONPATH"] = str(PROJECT)
    command = [sys.executable, "-m", "{{ cookiecutter.package_name }}", "idempotency", "purge"]

    def purge(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )

    unasked, asked = purge(), purge("--settings", "local.settings.json")
    assert unasked.returncode == 2, unasked.stdout
    assert "no storage account" in unasked.stderr
    assert "add --settings local.settings.json" in unasked.stderr  # as the queue commands say
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["table"] == table_name


def test_a_failing_body_releases_its_key_so_the_retry_runs_at_once(
    app_env: AppUnderTest, table_name: str
) -> None:
    attempts: list[int] = []

    @idempotent()
    def flaky(message: SqsMessage) -> None:
        attempts.append(message.receive_count)
        if message.receive_count < 3:
            raise RuntimeError("downstream unavailable")

    send(app_env, json.dumps({"id": "order-1", "action": "ship"}))
    summaries = drain_until_empty(app_env, flaky)
    assert attempts == [1, 2, 3]
    assert sum(s.succeeded for s in summaries) == 1


def test_a_body_longer_than_its_lease_keeps_its_key(
    app_env: AppUnderTest, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDEMPOTENCY_IN_PROGRESS_SECONDS", "3")  # renewed every second
    store = TableStore.from_environment()
    held = threading.Event()
    finish = threading.Event()

    @idempotent(key=by_id, store=store)
    def slow(message: SqsMessage) -> None:
        held.set()
        finish.wait(timeout=30)

    first = SqsMessage(message_id="m-1", receipt_handle="r", body='{"id": "order-1"}')
    twin = SqsMessage(message_id="m-2", receipt_handle="r", body='{"id": "order-1"}')
    runner = threading.Thread(target=slow, args=(first,))
    runner.start()
    held.wait(timeout=30)
    threading.Event().wait(7)  # over twice the lease: only renewals keep the key
    with pytest.raises(AttemptInProgress):
        slow(twin)
    finish.set()
    runner.join(timeout=30)
    slow(twin)  # complete now: skipped, no error


def test_an_async_handler_runs_once_and_its_table_calls_leave_the_event_loop(
    app_env: AppUnderTest, table_name: str
) -> None:
    requests = TableRequests()
    runs: list[str] = []

    @idempotent(key=by_id, store=TableStore.from_environment(raw_request_hook=requests))
    async def ship(message: SqsMessage) -> None:
        await asyncio.sleep(0)
        runs.append(by_id(message))

    send(app_env, *[json.dumps({"id": "order-1", "action": "ship"})] * 2)
    raw = app_env.client.receive_message(
        QueueUrl=app_env.queues.input_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    messages = [SqsMessage.from_sqs(m) for m in raw["Messages"]]
    while len(messages) < 2:
        more = app_env.client.receive_message(QueueUrl=app_env.queues.input_url, WaitTimeSeconds=1)
        messages += [SqsMessage.from_sqs(m) for m in more.get("Messages", [])]

    async def deliver() -> str:
        for message in messages:
            await ship(message)
        return threading.current_thread().name

    loop_thread = asyncio.run(deliver())
    assert runs == ["order-1"]
    assert requests.total() > 0
    assert loop_thread not in requests.threads


def test_table_transactions_per_message_counted_on_the_wire(app_env: AppUnderTest, table_name: str) -> None:
    """Measured figures for the README's cost table: one handler at a time, so duplicates come after."""
    requests = TableRequests()
    store = TableStore.from_environment(raw_request_hook=requests)

    @idempotent(key=by_id, store=store)
    def ship(message: SqsMessage) -> None:
        """Succeeds."""

    first, dup = 10, 5
    send(
        app_env,
        *(json.dumps({"id": f"order-{n}", "action": "ship"}) for n in list(range(first)) + list(range(dup))),
    )
    drain_until_empty(app_env, ship, replace(app_env.settings, max_concurrency=1))
    total = requests.total()
    print(
        f"table requests for {first} first deliveries and {dup} duplicates: {dict(requests.kinds)}; "
        f"{(total - 2) / (first + dup):.2f} per delivery, plus 2 once (the insert that found no table, "
        "and its creation)"
    )
    # First delivery: insert + complete. Duplicate: the refused insert + a read. Once: the table.
    assert requests.kinds == Counter(insert=first + dup + 1, complete=first, read=dup, create_table=1)


def test_table_transactions_of_a_failure_and_of_a_take_over_counted_on_the_wire(table_name: str) -> None:
    clock = Clock()
    requests = TableRequests()
    store = TableStore.from_environment(clock=clock, raw_request_hook=requests)
    store.abandon(claimed(store, "set-up", "m-0", "costs"))  # the table exists from here on
    failing = SqsMessage(message_id="m-1", receipt_handle="r", body="{}")

    @idempotent(scope="costs", store=store)
    def fail(message: SqsMessage) -> None:
        raise RuntimeError("downstream unavailable")

    requests.kinds.clear()
    with pytest.raises(RuntimeError):
        fail(failing)
    assert requests.kinds == Counter(insert=1, delete=1)
    failure = requests.total()

    store.abandon(claimed(store, "crashed", "m-2", "costs"))  # stands in for a crash mid-body
    clock.set(clock.now + timedelta(seconds=store.settings.in_progress_seconds + 1))
    requests.kinds.clear()
    store.complete(claimed(store, "crashed", "m-3", "costs"))
    assert requests.kinds == Counter(insert=1, read=1, update=1, complete=1)
    print(f"table requests: failing body {failure}, take-over of a crashed attempt {requests.total()}")


# Storage faults: the store's failure is never the message's.
def faulty_store(storage_connection: str, table_name: str, faults: TableFaults, **options: Any) -> TableStore:
    """A store whose table calls pass through ``faults``; its table exists already."""
    TableClient.from_connection_string(storage_connection, table_name).create_table()
    return TableStore.from_environment(per_call_policies=[faults], **options)


def send_one(app_env: AppUnderTest, url: str, body: str) -> str:
    fifo = {"MessageGroupId": "g", "MessageDeduplicationId": uuid.uuid4().hex} if is_fifo(url) else {}
    return app_env.client.send_message(QueueUrl=url, MessageBody=body, **fifo)["MessageId"]


def drain_queue(app_env: AppUnderTest, url: str, handler: Handler) -> list[DrainSummary]:
    """The consumer's own passes (``engine.consumer.drain``) until the queue is empty; retries after 1 s."""
    options = replace(consumer.DrainOptions.from_settings(app_env.settings), backoff_base_seconds=1)
    summaries = []
    for _ in range(6):
        summaries.append(consumer.drain(app_env.client, url, handler, options))
        if queue_depth(app_env.client, url).backlog == 0:
            break
    return summaries


def outcomes(summaries: list[DrainSummary]) -> tuple[int, int]:
    return sum(s.succeeded for s in summaries), sum(s.failed for s in summaries)


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


class FlakyBody:
    """A handler whose body raises the first time and succeeds after; it notes each refusal of its key."""

    def __init__(self, store: TableStore) -> None:
        self.attempts: list[int] = []
        self.refused: list[int] = []
        self.body = idempotent(scope="flaky", store=store)(self._body)

    def _body(self, message: SqsMessage) -> None:
        self.attempts.append(message.receive_count)
        if len(self.attempts) == 1:
            raise RuntimeError("downstream unavailable")

    def __call__(self, message: SqsMessage) -> None:
        try:
            self.body(message)
        except AttemptInProgress:
            self.refused.append(message.receive_count)
            raise


QUEUE_KINDS = pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])


@QUEUE_KINDS
def test_a_completion_write_failing_beyond_the_sdks_retries_then_recovering_keeps_the_success(
    app_env: AppUnderTest, make_queue: MakeQueue, table_name: str, storage_connection: str, fifo: bool
) -> None:
    queue = make_queue(fifo=fifo)
    faults = TableFaults()
    faults.fail["complete"] = 2
    runs: list[int] = []

    @idempotent(scope="completion", store=faulty_store(storage_connection, table_name, faults))
    def ship(message: SqsMessage) -> None:
        runs.append(message.receive_count)

    message_id = send_one(app_env, queue.url, json.dumps({"id": "order-1"}))
    summaries = drain_queue(app_env, queue.url, ship)

    assert faults.failed["complete"] == 2
    assert runs == [1]
    assert outcomes(summaries) == (1, 0)
    assert queue_depth(app_env.client, queue.url).backlog == 0
    assert drain_all(app_env.client, queue.dlq_url) == []
    assert record_of(table_name, storage_connection, message_id, "completion")["Status"] == "complete"


@QUEUE_KINDS
def test_a_completion_the_store_refuses_for_the_whole_window_is_still_a_success(
    app_env: AppUnderTest,
    make_queue: MakeQueue,
    table_name: str,
    storage_connection: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fifo: bool,
) -> None:
    monkeypatch.setenv("IDEMPOTENCY_IN_PROGRESS_SECONDS", "12")  # a 4 s retry window; the keeper every 4 s
    queue = make_queue(fifo=fifo)
    faults = TableFaults()
    faults.down.add("complete")
    runs: list[str] = []

    @idempotent(key=by_id, scope="completion", store=faulty_store(storage_connection, table_name, faults))
    def ship(message: SqsMessage) -> None:
        runs.append(by_id(message))

    send_one(app_env, queue.url, json.dumps({"id": "order-7", "card": "4111 1111 1111 1111"}))
    with caplog.at_level(logging.INFO):
        summaries = drain_queue(app_env, queue.url, ship)
        faults.down.clear()  # storage is back: the keeper records the completion before the lease lapses
        recorded = wait_for(
            lambda: (
                record_of(table_name, storage_connection, "order-7", "completion")["Status"] == "complete"
            ),
            seconds=12,
        )

    assert runs == ["order-7"]
    assert outcomes(summaries) == (1, 0)
    assert queue_depth(app_env.client, queue.url).backlog == 0
    assert drain_all(app_env.client, queue.dlq_url) == []
    failures = [r.getMessage() for r in caplog.records if "could not record the completion" in r.getMessage()]
    assert len(failures) == 1
    assert "order-7" in failures[0] and "the store's failure, not the body's" in failures[0]
    assert "4111" not in caplog.text  # the key is logged, never the body
    assert recorded


@QUEUE_KINDS
def test_a_claim_the_store_refuses_for_a_while_is_retried_without_burning_a_receive(
    app_env: AppUnderTest, make_queue: MakeQueue, table_name: str, storage_connection: str, fifo: bool
) -> None:
    queue = make_queue(fifo=fifo)
    faults = TableFaults()
    faults.fail["insert"] = 2
    runs: list[int] = []

    @idempotent(scope="claim", store=faulty_store(storage_connection, table_name, faults))
    def ship(message: SqsMessage) -> None:
        runs.append(message.receive_count)

    send_one(app_env, queue.url, json.dumps({"id": "order-1"}))
    summaries = drain_queue(app_env, queue.url, ship)

    assert faults.failed["insert"] == 2
    assert runs == [1]  # on its first receive: no attempt was spent on the store's outage
    assert outcomes(summaries) == (1, 0)
    assert queue_depth(app_env.client, queue.url).backlog == 0
    assert drain_all(app_env.client, queue.dlq_url) == []


@QUEUE_KINDS
def test_a_claim_outage_past_the_retry_window_counts_no_attempt_and_the_body_runs_once_storage_is_back(
    app_env: AppUnderTest,
    make_queue: MakeQueue,
    table_name: str,
    storage_connection: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fifo: bool,
) -> None:
    """Storage refuses claims for about 6 s, several retry windows: each window ends in
    ``StoreUnavailable``, which the drain takes as no attempt. It holds the message in the pass
    and runs it again after a growing pause, until storage is back: before, each window counted,
    and with ``maxReceiveCount`` 3 a message whose body never ran went to the DLQ."""
    monkeypatch.setenv("IDEMPOTENCY_IN_PROGRESS_SECONDS", "3")  # a 1 s retry window
    queue = make_queue(fifo=fifo, max_receive_count=3)
    faults = TableFaults()
    faults.down.add("insert")
    runs: list[int] = []

    @idempotent(scope="claim", store=faulty_store(storage_connection, table_name, faults))
    def ship(message: SqsMessage) -> None:
        runs.append(message.receive_count)

    message_id = send_one(app_env, queue.url, json.dumps({"id": "order-1"}))
    options = replace(consumer.DrainOptions.from_settings(app_env.settings), backoff_base_seconds=1)
    storage_back = threading.Timer(6, faults.down.clear)
    storage_back.start()
    try:
        with caplog.at_level(logging.WARNING):
            summary = consumer.drain(app_env.client, queue.url, ship, options)
    finally:
        storage_back.cancel()
        faults.down.clear()

    context = f"claims refused {faults.failed['insert']}, runs {runs}, {summary}"
    assert runs == [1], context  # once, on its first receive: no attempt and no receive spent
    assert (summary.succeeded, summary.failed) == (1, 0), context
    assert summary.unavailable >= 2, context  # two or three retry windows ran out
    assert drain_all(app_env.client, queue.dlq_url) == [], context
    assert queue_depth(app_env.client, queue.url).backlog == 0, context
    told = [r.getMessage() for r in caplog.records if "failed while claiming key" in r.getMessage()]
    assert len(told) == summary.unavailable, context
    assert all("the store's failure, not the message's" in line for line in told)
    assert all(message_id in line and "The body did not run" in line for line in told)


@QUEUE_KINDS
def test_a_release_the_store_refuses_for_a_while_is_retried_so_the_retry_runs_at_once(
    app_env: AppUnderTest, make_queue: MakeQueue, table_name: str, storage_connection: str, fifo: bool
) -> None:
    queue = make_queue(fifo=fifo)
    faults = TableFaults()
    faults.fail["delete"] = 2
    handler = FlakyBody(faulty_store(storage_connection, table_name, faults))

    send_one(app_env, queue.url, json.dumps({"id": "order-1"}))
    summaries = drain_queue(app_env, queue.url, handler)

    assert faults.failed["delete"] == 2
    assert handler.attempts == [1, 2]  # raised, then succeeded on the retry
    assert handler.refused == []  # no AttemptInProgress: no receive burned on the store's failure
    assert outcomes(summaries) == (1, 1)
    assert queue_depth(app_env.client, queue.url).backlog == 0
    assert drain_all(app_env.client, queue.dlq_url) == []


@QUEUE_KINDS
def test_a_retry_in_this_process_takes_over_at_once_from_its_own_ended_attempt(
    app_env: AppUnderTest,
    make_queue: MakeQueue,
    table_name: str,
    storage_connection: str,
    monkeypatch: pytest.MonkeyPatch,
    fifo: bool,
) -> None:
    monkeypatch.setenv("IDEMPOTENCY_IN_PROGRESS_SECONDS", "3")  # a 1 s retry window
    queue = make_queue(fifo=fifo)
    faults = TableFaults()
    faults.down.add("delete")  # the release never lands
    clock = Clock()  # never moves: no lease lapses, so only this process's knowledge frees the key
    handler = FlakyBody(faulty_store(storage_connection, table_name, faults, clock=clock))

    message_id = send_one(app_env, queue.url, json.dumps({"id": "order-1"}))
    summaries = drain_queue(app_env, queue.url, handler)

    assert handler.attempts == [1, 2]
    assert handler.refused == []
    assert outcomes(summaries) == (1, 1)
    assert queue_depth(app_env.client, queue.url).backlog == 0
    assert drain_all(app_env.client, queue.dlq_url) == []
    done = record_of(table_name, storage_connection, message_id, "flaky")
    assert (done["Status"], done["Attempt"]) == (Status.COMPLETE.value, 2)


def test_only_an_attempt_that_ended_in_this_process_is_taken_over_at_once(table_name: str) -> None:
    clock = Clock()  # never moves: no lease lapses here
    store = TableStore.from_environment(clock=clock)
    elsewhere = TableStore.from_environment(clock=clock)  # another process's store of the same table
    started, finish = threading.Event(), threading.Event()
    runs: list[int] = []

    def body(message: SqsMessage) -> None:
        runs.append(message.receive_count)
        if message.receive_count == 1:
            started.set()
            finish.wait(timeout=30)
            raise KeyboardInterrupt  # interrupted: nothing is written, the record stays in progress

    handle = idempotent(scope="redelivery", store=store)(body)
    handle_elsewhere = idempotent(scope="redelivery", store=elsewhere)(body)

    def delivery(receive_count: int) -> SqsMessage:
        return SqsMessage("m-1", f"r-{receive_count}", "{}", {"ApproximateReceiveCount": str(receive_count)})

    def first_attempt() -> None:
        with contextlib.suppress(KeyboardInterrupt):
            handle(delivery(1))

    running = threading.Thread(target=first_attempt)
    running.start()
    started.wait(timeout=30)
    # SQS handing the message out again proves its visibility ran out, not that its body stopped:
    # while the first attempt runs, a redelivery with a higher receive count is refused.
    with pytest.raises(AttemptInProgress):
        handle(delivery(2))
    finish.set()
    running.join(timeout=30)
    with pytest.raises(AttemptInProgress):  # another process cannot know the attempt ended
        handle_elsewhere(delivery(3))
    handle(delivery(4))  # this process knows: it takes over at once
    handle(delivery(5))  # and once complete, a further delivery skips the body
    assert runs == [1, 4]


def test_a_body_that_succeeded_here_is_skipped_on_redelivery_while_its_completion_is_unrecorded(
    table_name: str, storage_connection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDEMPOTENCY_IN_PROGRESS_SECONDS", "3")  # a 1 s retry window
    faults = TableFaults()
    faults.down.add("complete")
    clock = Clock()
    runs: list[str] = []

    @idempotent(scope="unrecorded", store=faulty_store(storage_connection, table_name, faults, clock=clock))
    def ship(message: SqsMessage) -> None:
        runs.append(message.message_id)

    message = SqsMessage("m-1", "r-1", "{}")
    ship(message)  # the completion is refused for the whole window: still a success
    ship(replace(message, receipt_handle="r-2"))  # a redelivery in this process: the body ran already
    assert runs == ["m-1"]
    faults.down.clear()
    ship(replace(message, receipt_handle="r-3"))
    assert runs == ["m-1"]
    assert record_of(table_name, storage_connection, "m-1", "unrecorded")["Status"] == Status.COMPLETE.value


def test_a_write_that_landed_but_lost_its_answer_is_known_as_its_own(
    table_name: str, storage_connection: str, caplog: pytest.LogCaptureFixture
) -> None:
    faults = TableFaults()
    faults.lose_answer.update({"insert": 1, "complete": 1})
    runs: list[str] = []

    @idempotent(scope="answers", store=faulty_store(storage_connection, table_name, faults))
    def ship(message: SqsMessage) -> None:
        runs.append(message.message_id)

    message = SqsMessage("m-1", "r-1", "{}")
    with caplog.at_level(logging.INFO):
        ship(message)
        ship(message)
    assert faults.failed == Counter(insert=1, complete=1)
    assert runs == ["m-1"]
    assert "may have run twice" not in caplog.text
    assert record_of(table_name, storage_connection, "m-1", "answers")["Status"] == Status.COMPLETE.value


def test_table_transactions_per_message_under_storage_faults_counted_on_the_wire(
    table_name: str, storage_connection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Measured figures for docs/idempotency.md: each path's requests that reached storage, and
    the tries the injected faults refused (they never reach storage)."""
    monkeypatch.setenv("IDEMPOTENCY_IN_PROGRESS_SECONDS", "3")  # a 1 s retry window
    faults = TableFaults()
    sent = TableRequests()
    clock = Clock()  # never moves: no lease lapses
    store = faulty_store(storage_connection, table_name, faults, clock=clock, raw_request_hook=sent)
    figures: dict[str, tuple[Counter[str], Counter[str]]] = {}

    def measure(path: str, *deliveries: Callable[[], None]) -> Counter[str]:
        sent.kinds.clear()
        faults.failed.clear()
        for deliver in deliveries:
            with contextlib.suppress(RuntimeError):
                deliver()
        faults.fail.clear()
        faults.down.clear()
        figures[path] = (Counter(sent.kinds), Counter(faults.failed))
        return Counter(sent.kinds)

    def delivery(key: str, body_raises: bool = False) -> Callable[[], None]:
        @idempotent(key=lambda _: key, scope="costs", store=store)
        def body(message: SqsMessage) -> None:
            if body_raises:
                raise RuntimeError("downstream unavailable")

        return lambda: body(SqsMessage(f"m-{key}", "r", "{}"))

    assert measure("success", delivery("a")) == Counter(insert=1, complete=1)
    faults.fail["complete"] = 1
    assert measure("completion refused once", delivery("b")) == Counter(insert=1, complete=1)
    faults.fail["insert"] = 1
    assert measure("claim refused once", delivery("c")) == Counter(insert=1, complete=1)
    faults.fail["delete"] = 1
    assert measure("release refused once, then the retry", delivery("d", True), delivery("d")) == Counter(
        insert=2, delete=1, complete=1
    )
    faults.down.add("delete")
    assert measure("release refused past the window, then the retry", delivery("e", True), delivery("e")) == (
        Counter(insert=2, read=1, update=1, complete=1)
    )
    faults.down.add("complete")
    assert measure("completion refused past the window", delivery("f")) == Counter(insert=1)

    # Storage is back (measure() cleared the faults): the keeper's write lands, one more transaction.
    def landed() -> bool:
        return bool(record_of(table_name, storage_connection, "f", "costs")["Status"] == "complete")

    assert wait_for(landed, seconds=10)
    for path, (reached, refused) in figures.items():
        print(f"{path}: {sum(reached.values())} reached storage {dict(reached)}; refused {dict(refused)}")


# Units: the record's states, keys, settings and client selection.
def test_a_records_verdict_follows_its_state_lease_and_expiry() -> None:
    now = datetime.now(UTC)
    record = Record.claimed("k", "s", "m", now=now, lease=timedelta(seconds=60), ttl=timedelta(hours=1))
    assert record.verdict(now) is Verdict.BUSY
    assert record.verdict(now + timedelta(seconds=61)) is Verdict.CLAIM
    done = record.completed(now, timedelta(hours=1))
    assert done.verdict(now + timedelta(minutes=59)) is Verdict.DONE
    assert done.verdict(now + timedelta(hours=1)) is Verdict.CLAIM
    assert record.taken_over(record, now).attempt == 2
    assert record.taken_over(record, now + timedelta(hours=2)).attempt == 1  # expired: a fresh start


def test_keys_that_table_storage_refuses_are_hashed() -> None:
    assert table_key("3f2b-44aa.order:1") == "3f2b-44aa.order:1"
    for refused in ("a/b", "a#b", "a?b", "a\\b", "tab\there", "x" * 300, "ünïcode"):
        hashed = table_key(refused)
        assert hashed.startswith("sha256-") and len(hashed) == 71


def test_a_plain_key_never_equals_a_hashed_one() -> None:
    hashed = table_key("a/b")
    assert table_key(hashed) != hashed  # a key that looks hashed is hashed again
    assert table_key(hashed).startswith("sha256-")


def test_a_key_crafted_as_another_keys_hashed_form_does_not_collide_with_it(
    app_env: AppUnderTest, table_name: str
) -> None:
    original = "customer/42"  # hashed: Table storage refuses '/'
    crafted = "sha256-" + hashlib.sha256(original.encode()).hexdigest()
    runs: Counter[str] = Counter()

    @idempotent(key=by_id)
    def ship(message: SqsMessage) -> None:
        runs[by_id(message)] += 1

    send(app_env, json.dumps({"id": original}))
    drain_until_empty(app_env, ship)
    send(app_env, json.dumps({"id": crafted}))
    summaries = drain_until_empty(app_env, ship)

    assert runs == {original: 1, crafted: 1}  # both handled: neither skipped as the other's duplicate
    assert sum(s.succeeded for s in summaries) == 1
    assert queue_depth(app_env.client, app_env.queues.input_url).backlog == 0


def test_idempotency_settings_default_to_the_visibility_timeout_and_are_checked() -> None:
    assert IdempotencySettings.from_env({}) == IdempotencySettings("idempotency", 86_400, 60)
    assert IdempotencySettings.from_env({"SQS_VISIBILITY_TIMEOUT_SECONDS": "120"}).in_progress_seconds == 120
    for name, value in (("IDEMPOTENCY_TABLE", "no-dashes"), ("IDEMPOTENCY_TTL_SECONDS", "0")):
        with pytest.raises(SettingsError, match=name):
            IdempotencySettings.from_env({name: value})


def test_the_table_is_reached_like_the_functions_host_reaches_storage() -> None:
    from azure.identity import ManagedIdentityCredential

    local = table_client("idempotency", {"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert local.url.startswith("http://127.0.0.1:10002")
    azure = table_client(
        "idempotency",
        {
            "AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net",
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001",
        },
    )
    assert azure.url.startswith("https://acct.table.core.windows.net")
    assert isinstance(azure.credential, ManagedIdentityCredential)
    with pytest.raises(SettingsError, match="AzureWebJobsStorage__tableServiceUri"):
        table_client("idempotency", {})
