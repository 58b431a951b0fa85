"""The drain outlives a stalled timer: the watchdog on the drain-token queue (Azurite), driving the app's
real functions against SQS over HTTP, as the Functions host would call them.

The host's part is played by ``Host``: a timer thread that calls ``drain_input_queue_on_timer`` at the
schedule's occurrences (until the test stops it), and the queue trigger of ``drain_input_queue_on_token``
as host.json configures it (one message at a time, deleted on success, to ``<queue>-poison`` on failure
with ``maxDequeueCount`` 1). Time is compressed: ``SQS_POLL_SCHEDULE`` fires every 2 s.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError, ServiceResponseError
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.data.tables import TableClient
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient
from botocore.awsrequest import AWSResponse

from {{ cookiecutter.package_name }} import handler
from {{ cookiecutter.package_name }}.engine.aws_session import sqs_client
from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage
from {{ cookiecutter.package_name }}.engine.scale_out import watchdog
from {{ cookiecutter.package_name }}.engine.scale_out.drain_token import (
    BadToken,
    DrainToken,
    WatchdogToken,
    decode_token,
)
from {{ cookiecutter.package_name }}.engine.scale_out.pass_leases import (
    TABLE,
    TICK_SLOT,
    pass_slots,
    passes_table,
    reset_pass_slot_clients,
)
from {{ cookiecutter.package_name }}.engine.scale_out.token_queue import reset_token_queue_clients, token_queue_client
from {{ cookiecutter.package_name }}.engine.scale_out.watchdog import (
    LATE_TICK_SECONDS,
    RECORD_ROW,
    Armed,
    WatchdogChain,
    watchdog_chain,
)
from {{ cookiecutter.package_name }}.engine.schedule import ScheduleError, parse_schedule
from {{ cookiecutter.package_name }}.engine.settings import Settings
from {{ cookiecutter.package_name }}.ops.local_dev.azurite import Azurite

from .conftest import AppUnderTest, queue_depth

Functions = dict[str, Callable[..., object]]

PERIOD = 2.0
SCHEDULE = "*/2 * * * * *"
# host.json's maxPollingInterval is 10 s; compressed as the schedule is.
POLL_SECONDS = 0.25
# One idle pass: the 1 s linger and a receive's round trip, with room for a busy machine.
PASS_SECONDS = 3.0


def at(epoch: str) -> float:
    return datetime.fromisoformat(epoch).replace(tzinfo=UTC).timestamp()


# --- The schedule, as the host reads SQS_POLL_SCHEDULE ----------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "occurrences"),
    [
        ("0 */1 * * * *", "2026-12-02T05:05:30", ["05:06:00", "05:07:00", "05:08:00"]),
        ("*/2 * * * * *", "2026-12-02T05:05:59", ["05:06:00", "05:06:02", "05:06:04"]),
        ("0 */5 * * * *", "2026-12-02T05:05:00", ["05:10:00", "05:15:00", "05:20:00"]),
        ("30 15 9-17/4 * * *", "2026-12-02T13:20:00", ["17:15:30", "09:15:30", "13:15:30"]),
        ("0 0 * * * *", "2026-12-02T23:59:59", ["00:00:00", "01:00:00", "02:00:00"]),
        ("5,10 0 12 * * *", "2026-12-02T12:00:05", ["12:00:10", "12:00:05", "12:00:10"]),
        ("0 30 9 * Jan Mon", "2026-12-02T00:00:00", ["09:30:00", "09:30:00", "09:30:00"]),
        ("*/15 * * * *", "2026-12-02T05:05:00", ["05:15:00", "05:30:00", "05:45:00"]),  # five fields
        ("00:05:00", "2026-12-02T05:05:00", ["05:10:00", "05:15:00", "05:20:00"]),  # a TimeSpan
    ],
)
def test_the_schedule_fires_when_the_host_would(expression: str, after: str, occurrences: list[str]) -> None:
    schedule = parse_schedule(expression)
    moment = at(after)
    times = []
    for _ in occurrences:
        moment = schedule.after(moment)
        times.append(datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S"))
    assert times == occurrences
    assert schedule.after(at(after), 3) == moment


def test_weekdays_and_dates_follow_ncrontab_and_a_gap_is_the_gap() -> None:
    weekdays = parse_schedule("0 0 9-17 * * 1-5")  # hourly, Monday to Friday
    friday_evening = at("2026-12-04T17:00:00")  # a Friday
    assert weekdays.after(friday_evening) == at("2026-12-07T09:00:00")  # Monday
    assert weekdays.after(friday_evening, 3) == at("2026-12-07T11:00:00")
    # Day of month and day of week must both match (NCrontab), not either: the next Friday the 13th.
    assert weekdays.after(at("2026-01-01T00:00:00")) == at("2026-01-01T09:00:00")  # a Thursday
    friday_13th = parse_schedule("0 0 0 13 * Fri")
    assert friday_13th.after(at("2026-01-01T00:00:00")) == at("2026-02-13T00:00:00")
    leap = parse_schedule("0 0 0 29 2 *")
    assert leap.after(at("2026-03-01T00:00:00")) == at("2028-02-29T00:00:00")


def test_the_schedule_runs_in_the_hosts_time_zone() -> None:
    daily = parse_schedule("0 0 9 * * *", "Europe/Berlin")
    assert daily.after(at("2026-12-02T00:00:00")) == at("2026-12-02T08:00:00")  # CET, UTC+1
    assert daily.after(at("2026-07-02T00:00:00")) == at("2026-07-02T07:00:00")  # CEST, UTC+2
    # 02:30 does not exist on the day clocks go forward; the next occurrence is still after the last.
    nightly = parse_schedule("0 30 2 * * *", "Europe/Berlin")
    before = at("2026-03-28T12:00:00")
    assert nightly.after(before) > before


@pytest.mark.parametrize(
    "expression",
    ["", "* * * *", "61 * * * * *", "*/0 * * * * *", "0 0 0 31 2 *", "0 0 0 * Foo *", "5-1 * * * * *"],
)
def test_a_schedule_that_cannot_fire_is_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


def test_the_watchdog_token_is_told_from_a_drain_token() -> None:
    drain = DrainToken(queue="in", issued_at=1.0, budget_seconds=60, fan_out_id="f")
    dog = WatchdogToken(queue="in", issued_at=2.0)
    assert decode_token(drain.encode()) == drain
    assert decode_token(dog.encode()) == dog
    for text in ('{"kind":"watchdog","queue":"in"}', dog.encode().replace('"version":1', '"version":9')):
        with pytest.raises(BadToken):
            decode_token(text)
    # An app without the watchdog reads it as a drain token: it drops it, it does not run it.
    with pytest.raises(BadToken):
        DrainToken.decode(dog.encode())


# --- Against Azurite and SQS -----------------------------------------------------------------------


@dataclass
class Queues:
    """The token queue and its poison queue, read raw, as the host reads them."""

    raw: QueueClient
    poison: QueueClient

    def messages(self) -> int:
        try:
            return int(self.raw.get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0

    def visible(self) -> int:
        try:
            return len(self.raw.peek_messages(max_messages=32))
        except ResourceNotFoundError:
            return 0

    def poisoned(self) -> int:
        try:
            return int(self.poison.get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0


@pytest.fixture
def token_queue(
    app_env: AppUnderTest, storage_connection: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Queues]:
    name = f"tokens-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("SQS_SCALE_OUT_QUEUE", name)
    monkeypatch.setenv("SQS_POLL_SCHEDULE", SCHEDULE)
    reset_token_queue_clients()
    reset_pass_slot_clients()
    queues = Queues(
        QueueClient.from_connection_string(storage_connection, name),
        QueueClient.from_connection_string(storage_connection, f"{name}-poison"),
    )
    yield queues
    for client in (queues.raw, queues.poison):
        with contextlib.suppress(ResourceNotFoundError):
            client.delete_queue()
    reset_token_queue_clients()
    reset_pass_slot_clients()


def host_message(message: Any) -> QueueMessage:
    """A message of the token queue as the host hands it to the trigger: its body base64-decoded."""
    return QueueMessage(
        id=message.id,
        body=base64.b64decode(message.content),
        dequeue_count=message.dequeue_count,
        insertion_time=message.inserted_on,
        expiration_time=message.expires_on,
        pop_receipt=message.pop_receipt,
    )


@dataclass
class Host:
    """The host's part: the timer (while ``timer_on``) and the token queue's trigger on ``instances``
    instances, each a thread calling the app's functions."""

    functions: Functions
    queues: Queues
    instances: int = 1
    timer_on: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    ticks: list[float] = field(default_factory=list)
    ticking: threading.Lock = field(default_factory=threading.Lock)  # held while a tick runs
    runs: list[tuple[float, str]] = field(default_factory=list)  # (started, "ok" | "failed" | "poisoned")
    threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Host:
        self.threads = [threading.Thread(target=self._timer, name="host-timer", daemon=True)]
        self.threads += [
            threading.Thread(target=self._trigger, name=f"host-queue-{n}", daemon=True)
            for n in range(self.instances)
        ]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _timer(self) -> None:
        schedule = parse_schedule(SCHEDULE)
        due = schedule.after(time.time())
        while not self.stopping.wait(max(0.0, due - time.time())):
            with self.ticking:
                if self.timer_on.is_set():
                    self.ticks.append(time.time())
                    with contextlib.suppress(
                        Exception
                    ):  # a failed tick is the host's log line, not the test's
                        self.functions["drain_input_queue_on_timer"](TimerRequest())
            due = schedule.after(max(due, time.time()))  # a tick never overlaps itself

    def _trigger(self) -> None:
        while not self.stopping.is_set():
            try:
                message = self.queues.raw.receive_message(visibility_timeout=600)
            except ResourceNotFoundError:
                message = None
            if message is None:
                self.stopping.wait(POLL_SECONDS)
                continue
            started = time.time()
            if message.dequeue_count > 1:  # past maxDequeueCount: poisoned unrun
                self._poison(message)
                self.runs.append((started, "poisoned"))
                continue
            try:
                self.functions["drain_input_queue_on_token"](host_message(message))
            except Exception:
                self._poison(message)
                self.runs.append((started, "failed"))
            else:
                self.queues.raw.delete_message(message)
                self.runs.append((started, "ok"))

    def _poison(self, message: Any) -> None:
        with contextlib.suppress(Exception):
            self.queues.poison.create_queue()
        self.queues.poison.send_message(message.content)
        self.queues.raw.delete_message(message)

    def stop_timer(self) -> float:
        """The timer stops, once the tick running now (if any) has returned; when it stopped."""
        with self.ticking:
            self.timer_on.clear()
        return time.time()

    def wait_ticks(self, count: int) -> None:
        target = len(self.ticks) + count
        deadline = time.time() + count * PERIOD + 30
        while len(self.ticks) < target and time.time() < deadline:
            time.sleep(0.05)
        assert len(self.ticks) >= target, "the timer thread did not tick"


@dataclass
class Handled:
    """The handler as the owner writes it, recording when each work item ran."""

    at: dict[str, float] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, message: SqsMessage) -> None:
        with self.lock:
            self.at.setdefault(json.loads(message.body)["id"], time.time())


@pytest.fixture
def handled(monkeypatch: pytest.MonkeyPatch) -> Handled:
    recorder = Handled()
    monkeypatch.setattr(handler, "handle_message", recorder)
    return recorder


def send(app_env: AppUnderTest, item: str) -> float:
    """Send a work item; when the send started."""
    fifo = app_env.queues.input_url.endswith(".fifo")
    group = {"MessageGroupId": "g"} if fifo else {}
    body = json.dumps({"id": item, "action": "work"})
    started = time.time()
    app_env.client.send_message(QueueUrl=app_env.queues.input_url, MessageBody=body, **group)
    return started


def put_watchdog(queues: Queues, input_queue: str, *, issued_at: float, visible_in: int = 0) -> None:
    """A watchdog message no record names (as the host reads it: base64)."""
    text = WatchdogToken(input_queue, issued_at).encode()
    with contextlib.suppress(ResourceExistsError):
        queues.raw.create_queue()
    queues.raw.send_message(base64.b64encode(text.encode()).decode(), visibility_timeout=visible_in)


def the_chain() -> WatchdogChain:
    chain = watchdog_chain(Settings.from_env())
    assert chain is not None
    return chain


def drains(caplog: pytest.LogCaptureFixture, started_by: str | None) -> list[tuple[float, dict[str, Any]]]:
    return [
        (r.created, r.sqs_drain)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.msg.startswith("drain finished") and r.sqs_drain.get("started_by") == started_by  # type: ignore[attr-defined]
    ]


def messages_logged(caplog: pytest.LogCaptureFixture, phrase: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if phrase in r.getMessage()]


@pytest.mark.slow
def test_a_stopped_timer_is_drained_for_by_the_watchdog_until_it_ticks_again(
    app_env: AppUnderTest,
    token_queue: Queues,
    functions: Functions,
    handled: Handled,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: dict[str, float] = {}
    caplog.set_level(logging.INFO)
    with Host(functions, token_queue) as host:
        host.timer_on.set()
        host.wait_ticks(3)
        armed = the_chain().read()
        assert armed is not None and not armed.awake_since
        assert (token_queue.messages(), token_queue.visible()) == (1, 0), "one dormant watchdog"

        stopped = host.stop_timer()
        # Due 2 to 3 periods after the last tick, and 10 s at least (two progress samples): up to a
        # period past the earliest a tick keeps it dormant. The timer stays stopped 3 periods past that.
        wake_by = the_chain().dormant_due(max(host.ticks)) + PERIOD
        for n in range(4):
            sent[f"stalled-{n}"] = send(app_env, f"stalled-{n}")
            time.sleep(PERIOD)
        time.sleep(max(0.0, wake_by + 3 * PERIOD - time.time()))
        resumed = time.time()
        host.timer_on.set()  # it ticks again
        host.wait_ticks(5)
    last_tick_before = max(t for t in host.ticks if t < stopped)
    assert not [t for t in host.ticks if stopped < t < resumed], "the timer ran while stopped"

    latencies = {item: handled.at[item] - sent[item] for item in sent if item in handled.at}
    print(f"\nsent while the timer was stopped ({PERIOD:.0f} s periods): handled after", end=" ")
    print(", ".join(f"{latency:.1f} s" for latency in latencies.values()))
    assert set(latencies) == set(sent), "a message sent while the timer was stopped was never handled"
    overdue = [item for item in sent if handled.at[item] > max(wake_by, sent[item] + PERIOD) + PASS_SECONDS]
    assert overdue == [], "handled after the watchdog woke (or after its next period)"

    # Through the watchdog: no tick ran meanwhile, and watchdog passes drained what was handled.
    stand_ins = drains(caplog, "watchdog")
    during = [item for item in sent if handled.at[item] < resumed]
    assert sum(fields["succeeded"] for _, fields in stand_ins) >= len(during) >= 3
    warned = messages_logged(caplog, "drain timer missed its ticks: the watchdog drains in its place")
    assert warned and all(r.levelno == logging.WARNING for r in warned)
    first_stand_in = min(r.created for r in warned)
    # Not before the schedule's missed ticks, nor before 10 s: the earliest a tick keeps it dormant.
    earliest = the_chain().dormant_due(last_tick_before)
    assert earliest - 0.5 <= first_stand_in <= wake_by + PASS_SECONDS
    assert earliest - last_tick_before >= max(2 * PERIOD, watchdog.DORMANT_AT_LEAST_SECONDS)

    # The timer ticks again: the chain goes back to one dormant watchdog, and no watchdog drains again.
    assert messages_logged(caplog, "drain timer ticks again: the watchdog, awake since")
    late = [r.created for r in warned if r.created > resumed + PERIOD + PASS_SECONDS]
    assert late == []
    armed = the_chain().read()
    assert armed is not None and not armed.awake_since
    assert armed.due_at >= max(host.ticks) + 2 * PERIOD - 1
    assert (token_queue.messages(), token_queue.visible(), token_queue.poisoned()) == (1, 0, 0)
    assert queue_depth(app_env.client, app_env.queues.input_url).backlog == 0


def access_log_mark(azurite: Azurite, storage_connection: str) -> int:
    """How many requests Azurite has logged, once every request sent so far is in its log: a probe
    request's line comes after theirs."""
    probe = f"probe-{uuid.uuid4().hex[:12]}"
    with contextlib.suppress(ResourceNotFoundError):
        QueueClient.from_connection_string(storage_connection, probe).get_queue_properties()
    deadline = time.time() + 10
    while time.time() < deadline:
        lines = list(azurite.log)
        if any(probe in line for line in lines):
            return len(lines)
        time.sleep(0.02)
    raise AssertionError("Azurite did not log the probe request")


def storage_requests(azurite: Azurite, since: int, until: int) -> dict[str, int]:
    lines = [line for line in azurite.log[since:until] if '"' in line and "probe-" not in line]
    requests = [line.split('"')[1] for line in lines if line.split('"')[1].split(" ")[0].isupper()]
    return {
        "table": sum(1 for r in requests if TABLE in r or "/Tables" in r),
        "queue": sum(1 for r in requests if TABLE not in r and "/Tables" not in r),
    }


def test_ticks_of_a_timespan_a_little_late_push_the_watchdog_every_other_tick(token_queue: Queues) -> None:
    """A TimeSpan's occurrences count from when a tick came, so each tick finds the watchdog due a
    little earlier than its own ``missed_ticks`` ticks on: within ``LATE_TICK_SECONDS`` (at most a
    tenth of the interval: 1 s here) that is no reason to push it again (one more queue and table
    write a tick)."""
    settings = Settings.from_env()
    now = [time.time()]
    chain = WatchdogChain(
        table=passes_table(),
        queue=token_queue_client(settings.scale_out_queue),
        input_queue=settings.input_queue,
        schedule=parse_schedule("00:00:10"),
        missed_ticks=2,
        clock=lambda: now[0],
    )
    start = now[0]
    dues = []
    for tick, late in enumerate([0.0, 0.3, 0.5, 0.1, 0.4, 0.2, 0.5]):  # lateness seen on Premium
        now[0] = start + 10 * tick + late
        armed = chain.keep_dormant()
        assert armed is not None
        dues.append(armed.due_at)
        assert armed.due_at >= chain.dormant_due(now[0]) - min(LATE_TICK_SECONDS, 1.0)  # never nearer

    pushed = [tick for tick in range(1, len(dues)) if dues[tick] != dues[tick - 1]]
    assert pushed == [2, 4, 6], dues


def test_a_short_timespan_never_leaves_the_watchdog_due_before_the_missed_ticks(token_queue: Queues) -> None:
    """The lateness taken as on time is at most a tenth of the interval: on a 1 s TimeSpan with one
    missed tick, 2 s of it would leave a watchdog due before the next tick, awake beside a live timer."""
    settings = Settings.from_env()
    now = [time.time()]
    chain = WatchdogChain(
        table=passes_table(),
        queue=token_queue_client(settings.scale_out_queue),
        input_queue=settings.input_queue,
        schedule=parse_schedule("00:00:01"),
        missed_ticks=1,
        clock=lambda: now[0],
    )
    start = now[0]
    for tick, late in enumerate([0.0, 0.5, 0.9, 0.3, 0.7]):
        now[0] = start + tick + late
        armed = chain.keep_dormant()
        assert armed is not None
        assert armed.due_at >= now[0] + 1 - 0.1 + 1e-6, (tick, armed.due_at - now[0])


@pytest.mark.slow
def test_an_idle_tick_pays_a_few_storage_operations_for_its_watchdog(
    app_env: AppUnderTest,
    token_queue: Queues,
    functions: Functions,
    azurite: Azurite,
    storage_connection: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counted on the wire: Azurite's access log (storage) and botocore's before-send (SQS), per tick,
    with the watchdog off (the tick as it was) and on. The ticks come at the schedule's pace."""
    schedule = parse_schedule(SCHEDULE)
    figures: dict[str, list[dict[str, int]]] = {}
    for missed_ticks in ("0", "2"):
        monkeypatch.setenv("SQS_WATCHDOG_MISSED_TICKS", missed_ticks)
        sqs_calls: list[str] = []
        client = sqs_client(Settings.from_env())

        def count(event_name: str, **_: object) -> None:
            sqs_calls.append(event_name.rsplit(".", 1)[-1])  # noqa: B023 (read before the next round)

        client.meta.events.register("before-send.sqs", count, unique_id="idle-tick-count")
        functions["drain_input_queue_on_timer"](TimerRequest())  # the first: queue URL lookups, tables made
        per_tick = []
        for _ in range(6):
            time.sleep(max(0.0, schedule.after(time.time()) - time.time()))
            before, sqs_before = access_log_mark(azurite, storage_connection), len(sqs_calls)
            functions["drain_input_queue_on_timer"](TimerRequest())
            after = access_log_mark(azurite, storage_connection)
            per_tick.append({**storage_requests(azurite, before, after), "sqs": len(sqs_calls) - sqs_before})
        client.meta.events.unregister("before-send.sqs", unique_id="idle-tick-count")
        figures[missed_ticks] = per_tick

    print("\nrequests per idle tick, six ticks 2 s apart (table + queue = storage; SQS):")
    for missed_ticks, label in (("0", "watchdog off (the tick before it)"), ("2", "watchdog on")):
        ticks = figures[missed_ticks]
        storage = [t["table"] + t["queue"] for t in ticks]
        print(
            f"  {label}: storage {storage} (mean {sum(storage) / len(storage):.1f}; "
            f"table {[t['table'] for t in ticks]}, queue {[t['queue'] for t in ticks]}), "
            f"SQS {[t['sqs'] for t in ticks]}"
        )
    off, on = figures["0"], figures["2"]
    assert all(t["queue"] == 0 for t in off)
    assert [t["sqs"] for t in on] == [t["sqs"] for t in off], "the watchdog costs no SQS request"
    extra = [(a["table"] + a["queue"]) - (b["table"] + b["queue"]) for a, b in zip(on, off, strict=True)]
    assert max(extra) <= 3 and sum(extra) <= 2 * len(extra), extra  # a read a tick, a push every other
    # And the watchdog is armed, dormant: one invisible message.
    assert (token_queue.messages(), token_queue.visible()) == (1, 0)

    # A period while it stands in: the host's get and delete, and the watchdog's own pass.
    make_due_now(the_chain(), token_queue)
    before = access_log_mark(azurite, storage_connection)
    message = token_queue.raw.receive_message(visibility_timeout=600)
    functions["drain_input_queue_on_token"](host_message(message))
    token_queue.raw.delete_message(message)
    stand_in = storage_requests(azurite, before, access_log_mark(azurite, storage_connection))
    print(
        f"  a period the watchdog stands in: storage {stand_in['table'] + stand_in['queue']} "
        f"(table {stand_in['table']}, queue {stand_in['queue']}, the trigger's get and delete included)"
    )
    assert stand_in["queue"] == 3  # the host's get and delete, the successor's put


class ReceivesFail:
    """SQS answers every ReceiveMessage of the app's client with a 500, until removed."""

    def __init__(self, app_env: AppUnderTest) -> None:
        self.client = sqs_client(Settings.from_env())
        self.client.meta.events.register("before-call.sqs.ReceiveMessage", self.fail)

    @staticmethod
    def fail(**_: object) -> tuple[AWSResponse, dict[str, object]]:
        error = {"Code": "InternalError", "Message": "injected"}
        return AWSResponse("https://sqs", 500, {}, None), {"Error": error, "ResponseMetadata": {}}

    def remove(self) -> None:
        self.client.meta.events.unregister("before-call.sqs.ReceiveMessage", self.fail)


@pytest.mark.slow
def test_a_failed_watchdog_pass_is_poisoned_and_its_successor_drains(
    app_env: AppUnderTest,
    token_queue: Queues,
    functions: Functions,
    handled: Handled,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    caplog.set_level(logging.INFO)
    functions["drain_input_queue_on_timer"](TimerRequest())  # the last tick: the timer stops here
    faults = ReceivesFail(app_env)
    with Host(functions, token_queue) as host:
        deadline = time.time() + 4 * PERIOD + 30
        while token_queue.poisoned() == 0 and time.time() < deadline:
            time.sleep(0.1)
        faults.remove()
        assert token_queue.poisoned() == 1, "the watchdog's pass did not fail"
        sent = send(app_env, "after-the-poison")
        deadline = time.time() + 2 * PERIOD + PASS_SECONDS + 10
        while "after-the-poison" not in handled.at and time.time() < deadline:
            time.sleep(0.1)
    assert "after-the-poison" in handled.at, "the chain ended with the failed pass"
    assert handled.at["after-the-poison"] - sent <= PERIOD + PASS_SECONDS + 1
    assert [outcome for _, outcome in host.runs][:1] == ["failed"]
    assert token_queue.poisoned() == 1
    assert token_queue.messages() == 1  # the chain is one


@pytest.mark.slow
def test_racing_ticks_and_duplicate_watchdogs_leave_one_chain(
    app_env: AppUnderTest,
    token_queue: Queues,
    functions: Functions,
    handled: Handled,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # Two instances' timers fire together (a deployment, a lost timer lock), three times.
    for _ in range(3):
        start = threading.Barrier(2)

        def tick(start: threading.Barrier = start) -> None:
            start.wait()
            functions["drain_input_queue_on_timer"](TimerRequest())

        racers = [threading.Thread(target=tick) for _ in range(2)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
        assert token_queue.messages() == 1
        time.sleep(PERIOD)
    # Duplicates put by nobody's record (a delete that failed after a lost race), visible in a second.
    chain = the_chain()
    for _ in range(3):
        put_watchdog(token_queue, app_env.settings.input_queue, issued_at=time.time(), visible_in=1)
    # Two instances run the token queue while the timer stays stopped for 4 periods.
    with Host(functions, token_queue, instances=2):
        time.sleep(6 * PERIOD)
        send(app_env, "meanwhile")
        time.sleep(2 * PERIOD + PASS_SECONDS)
    assert len(messages_logged(caplog, "dropped unrun: the chain's watchdog is another message")) == 3
    assert "meanwhile" in handled.at
    armed = chain.read()
    assert armed is not None
    assert token_queue.messages() == 1
    assert all(m.id == armed.message_id for m in token_queue.raw.peek_messages())  # if due already: the one


def make_due_now(chain: WatchdogChain, queues: Queues, *, due_at: float | None = None) -> Armed:
    """As if the timer had stopped long enough: the recorded watchdog turns visible now. Its new pop
    receipt is recorded, as a push records it; ``due_at`` is what the record says it was due at."""
    armed = chain.read()
    assert armed is not None
    moved = queues.raw.update_message(armed.message_id, armed.pop_receipt, visibility_timeout=0)
    record = replace(armed, pop_receipt=moved.pop_receipt, due_at=time.time() if due_at is None else due_at)
    written = chain._write(record, armed)
    assert written is not None
    return written


def run_visible(functions: Functions, queues: Queues) -> list[str]:
    """The host's trigger, once for each message of the token queue visible now; the ids it ran."""
    ran = []
    for _ in range(queues.visible()):
        message = queues.raw.receive_message(visibility_timeout=600)
        if message is None:
            break
        functions["drain_input_queue_on_token"](host_message(message))
        queues.raw.delete_message(message)
        ran.append(str(message.id))
    return ran


@pytest.mark.slow
def test_a_watchdog_drains_only_in_the_ticks_slot(
    app_env: AppUnderTest,
    token_queue: Queues,
    functions: Functions,
    handled: Handled,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    functions["drain_input_queue_on_timer"](TimerRequest())
    chain = the_chain()
    send(app_env, "held")
    # A pass holds the tick slot (a long tick whose pushes failed) when the watchdog turns visible.
    tick_pass = pass_slots(app_env.settings.input_queue).claim([TICK_SLOT])
    assert tick_pass is not None
    armed = make_due_now(chain, token_queue)
    assert run_visible(functions, token_queue) == [armed.message_id]
    assert messages_logged(caplog, "does not drain: a drain pass holds the tick slot")
    assert "held" not in handled.at
    successor = chain.read()
    assert successor is not None and successor.message_id != armed.message_id  # the chain goes on
    tick_pass.release()

    # A watchdog's pass holds the tick slot against a tick that comes meanwhile.
    monkeypatch.setattr(handler, "handle_message", slow(handled, 3.0))
    make_due_now(chain, token_queue)
    stand_in = threading.Thread(target=run_visible, args=(functions, token_queue))
    stand_in.start()
    deadline = time.time() + 10
    while "held" not in handled.started and time.time() < deadline:
        time.sleep(0.05)
    ticked = time.time()
    functions["drain_input_queue_on_timer"](TimerRequest())
    stand_in.join()
    assert messages_logged(caplog, "another tick's drain pass is still running; this tick does not drain")
    assert messages_logged(caplog, "drain timer ticks again")
    assert [fields["succeeded"] for _, fields in drains(caplog, "watchdog")] == [1]
    assert [fields["succeeded"] for _, fields in drains(caplog, None)] == [0]  # the first tick's, idle
    # The tick pushed the successor back: dormant, two ticks away at least.
    dormant = chain.read()
    assert dormant is not None and not dormant.awake_since
    assert dormant.due_at >= ticked + 2 * PERIOD
    assert token_queue.messages() == 1


@pytest.mark.slow
def test_a_tick_whose_pass_outlasts_the_periods_keeps_the_watchdog_dormant(
    app_env: AppUnderTest,
    token_queue: Queues,
    functions: Functions,
    handled: Handled,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The default two missed ticks of this 2 s schedule are 4 to 6 s, and the pass pushes the watchdog
    # back only at its samples, 5 s apart: it stays two samples away all the same (delivery_latency
    # derives ticks 2 s apart).
    monkeypatch.setenv("SQS_MAX_CONCURRENCY", "1")
    monkeypatch.setattr(handler, "handle_message", slow(handled, 1.0))
    for n in range(12):
        send(app_env, f"slow-{n}")
    with Host(functions, token_queue) as host:  # the token queue's trigger runs; the timer is the test's
        started = time.time()
        functions["drain_input_queue_on_timer"](TimerRequest())  # one tick, a pass of 6 periods
        ended = time.time()
    assert ended - started >= 5 * PERIOD and len(handled.at) == 12
    assert host.runs == [], "the watchdog turned visible while the tick's pass ran"
    armed = the_chain().read()
    assert armed is not None and armed.due_at >= ended and not armed.awake_since


@pytest.mark.slow
def test_a_tick_closing_on_one_slow_handler_keeps_the_watchdog_dormant(
    app_env: AppUnderTest,
    token_queue: Queues,
    functions: Functions,
    handled: Handled,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Receiving stops after the linger while the handler runs on for 20 s: the pass's samples go on as
    # it closes (drain_pass.py), so the watchdog never wakes (it did at ~13 s, found by a review).
    monkeypatch.setattr(handler, "handle_message", slow(handled, 20.0))
    send(app_env, "slow")
    with Host(functions, token_queue) as host:
        functions["drain_input_queue_on_timer"](TimerRequest())
    assert len(handled.at) == 1
    assert host.runs == [], "the watchdog turned visible while the tick's pass ran"
    armed = the_chain().read()
    assert armed is not None and not armed.awake_since


def slow(recorder: Handled, seconds: float) -> Callable[[SqsMessage], None]:
    def handle(message: SqsMessage) -> None:
        recorder.started.add(json.loads(message.body)["id"])
        time.sleep(seconds)
        recorder(message)

    return handle


@pytest.mark.slow
def test_a_watchdog_that_wakes_before_it_is_due_waits_again_without_draining(
    app_env: AppUnderTest,
    token_queue: Queues,
    functions: Functions,
    handled: Handled,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A schedule's gap longer than the 7 days storage hides a message: the watchdog wakes at the cap."""
    caplog.set_level(logging.INFO)
    functions["drain_input_queue_on_timer"](TimerRequest())
    chain = the_chain()
    send(app_env, "not-yet")
    due = time.time() + 8 * 86_400
    make_due_now(chain, token_queue, due_at=due)
    run_visible(functions, token_queue)
    assert messages_logged(caplog, "woke early (storage hides a message 7 days at most)")
    assert "not-yet" not in handled.at and drains(caplog, "watchdog") == []
    again = chain.read()
    assert again is not None and again.due_at == due
    [hidden] = [m for m in token_queue.raw.receive_messages(visibility_timeout=1)] or [None]
    assert hidden is None and token_queue.messages() == 1


@pytest.mark.slow
def test_a_lost_watchdog_is_taken_over_by_one_put_after_it_was_due(
    app_env: AppUnderTest,
    token_queue: Queues,
    functions: Functions,
    handled: Handled,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    functions["drain_input_queue_on_timer"](TimerRequest())
    chain = the_chain()
    # The recorded watchdog ran and died before it put a successor: gone, and overdue.
    lost = make_due_now(chain, token_queue, due_at=time.time() - 1)
    [message] = token_queue.raw.receive_messages(visibility_timeout=600)
    token_queue.raw.delete_message(message)
    send(app_env, "after-the-loss")
    put_watchdog(token_queue, app_env.settings.input_queue, issued_at=lost.due_at - 60)  # older: a duplicate
    put_watchdog(token_queue, app_env.settings.input_queue, issued_at=time.time())  # put after: takes over
    run_visible(functions, token_queue)
    assert len(messages_logged(caplog, "dropped unrun: the chain's watchdog is another message")) == 1
    assert "after-the-loss" in handled.at
    successor = chain.read()
    assert successor is not None and successor.message_id != lost.message_id and successor.awake_since
    assert token_queue.messages() == 1


class WatchdogRecordOutage(SansIOHTTPPolicy[Any, Any]):
    """While ``on``, storage refuses each ``method`` request on the watchdog's record (an outage past
    the SDK's retries)."""

    def __init__(self, methods: tuple[str, ...]) -> None:
        self.methods = methods
        self.on = True

    def on_request(self, request: PipelineRequest[Any]) -> None:
        http = request.http_request
        if self.on and http.method in self.methods and f"RowKey='{RECORD_ROW}'" in http.url:
            raise ServiceResponseError(f"injected: {http.method} of the watchdog's record refused")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("methods", "logged"),
    [
        (("PUT", "MERGE", "PATCH"), "could not record its successor (ServiceResponseError"),
        (("GET",), "could not read its record or put its successor: ServiceResponseError"),
    ],
    ids=["writes-refused", "reads-refused"],
)
def test_a_watchdog_whose_record_is_out_of_reach_leaves_a_successor_that_takes_over(
    app_env: AppUnderTest,
    token_queue: Queues,
    functions: Functions,
    handled: Handled,
    storage_connection: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    methods: tuple[str, ...],
    logged: str,
) -> None:
    caplog.set_level(logging.INFO)
    functions["drain_input_queue_on_timer"](TimerRequest())
    chain = the_chain()
    armed = make_due_now(chain, token_queue)
    outage = WatchdogRecordOutage(methods)
    failing = TableClient.from_connection_string(storage_connection, TABLE, per_call_policies=[outage])
    monkeypatch.setattr(watchdog, "passes_table", lambda: failing)
    send(app_env, "first")
    assert run_visible(functions, token_queue) == [armed.message_id]
    assert messages_logged(caplog, logged)
    assert "first" in handled.at  # it drained all the same, in the tick's slot
    assert chain.read() == armed  # the record still names the watchdog that ran
    assert token_queue.messages() == 1  # one successor, unrecorded
    outage.on = False  # storage is back; the successor turns visible at the next occurrence
    time.sleep(PERIOD + 0.5)
    send(app_env, "second")
    run_visible(functions, token_queue)
    assert "second" in handled.at
    successor = chain.read()
    assert successor is not None and successor.message_id != armed.message_id
    assert token_queue.messages() == 1


@pytest.mark.slow
def test_with_the_watchdog_off_a_tick_puts_none_and_a_watchdog_is_dropped(
    app_env: AppUnderTest,
    token_queue: Queues,
    functions: Functions,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("SQS_WATCHDOG_MISSED_TICKS", "0")
    functions["drain_input_queue_on_timer"](TimerRequest())
    assert token_queue.messages() == 0
    put_watchdog(token_queue, app_env.settings.input_queue, issued_at=time.time())
    run_visible(functions, token_queue)
    assert messages_logged(caplog, "dropped unrun: SQS_WATCHDOG_MISSED_TICKS is 0")
    assert token_queue.messages() == 0
