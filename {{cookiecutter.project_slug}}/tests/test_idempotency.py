"""``@idempotent()`` against Azurite (tables) and the SQS emulator over HTTP, through the app's real drain.

Time windows are moved with an injectable clock, or kept small with the settings;
nothing here asserts how fast anything is.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.pipeline import PipelineRequest
from azure.data.tables import TableClient

from {{ cookiecutter.package_name }}.engine.consumer import DrainSummary, Handler, SqsMessage
from {{ cookiecutter.package_name }}.engine.idempotency import AttemptInProgress, TableStore, idempotent, table_client
from {{ cookiecutter.package_name }}.engine.idempotency.record import Record, Status, Verdict
from {{ cookiecutter.package_name }}.engine.idempotency.table_store import Claim, table_key
from {{ cookiecutter.package_name }}.engine.queues import is_fifo
from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue
from {{ cookiecutter.package_name }}.engine.settings import IdempotencySettings, Settings, SettingsError

from .conftest import AppUnderTest, drain_all, queue_depth

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


@dataclass
class TableRequests:
    """Every HTTP request a table client sends (retries included), by kind: an azure-core hook."""

    kinds: Counter[str] = field(default_factory=Counter)
    threads: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: PipelineRequest[Any]) -> None:
        http = request.http_request
        path = http.url.split("?", 1)[0]
        if path.rstrip("/").endswith("/Tables"):
            kind = "create_table"
        else:
            kind = {"POST": "insert", "GET": "read", "PUT": "update", "DELETE": "delete"}[http.method]
            kind = "query" if kind == "read" and "PartitionKey=" not in path else kind
        with self.lock:
            self.kinds[kind] += 1
            self.threads.add(threading.current_thread().name)

    def total(self) -> int:
        return sum(self.kinds.values())


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
    assert json.loads(result.stdout) == {"table": table_name, "deleted": 3, "kept": 0}


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
    assert requests.kinds == Counter(insert=first + dup + 1, update=first, read=dup, create_table=1)


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
    assert requests.kinds == Counter(insert=1, read=1, update=2)
    print(f"table requests: failing body {failure}, take-over of a crashed attempt {requests.total()}")


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
