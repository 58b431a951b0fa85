"""Scale-out: the tick's fan-out decision, its tokens on a real Storage queue (Azurite), and the
queue-triggered drain they start, against SQS over HTTP."""

from __future__ import annotations

import base64
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient

from {{ cookiecutter.package_name }} import handler
from {{ cookiecutter.package_name }}.engine.consumer import DrainSummary, SqsMessage
from {{ cookiecutter.package_name }}.engine.producer import OutgoingMessage, Sender
from {{ cookiecutter.package_name }}.engine.scale_out.decision import (
    Reading,
    arrival_rate,
    drains_wanted,
    token_passes,
    tokens_to_put,
)
from {{ cookiecutter.package_name }}.engine.scale_out.drain_token import BadToken, DrainToken
from {{ cookiecutter.package_name }}.engine.scale_out.fan_out import FanOut, claim_token_slot, fan_out_for
from {{ cookiecutter.package_name }}.engine.scale_out.pass_leases import (
    LEASE_SECONDS,
    TICK_SLOT,
    Lease,
    pass_slots,
    reset_pass_slot_clients,
)
from {{ cookiecutter.package_name }}.engine.scale_out.token_queue import (
    put_tokens,
    reset_token_queue_clients,
    token_queue_client,
)
from {{ cookiecutter.package_name }}.engine.settings import Settings, SettingsError
from {{ cookiecutter.package_name }}.engine.storage_account import StorageUnavailable

from .conftest import AppUnderTest, queue_depth, work_body

pytestmark = pytest.mark.slow

Functions = dict[str, Callable[..., object]]


@pytest.mark.parametrize(
    ("backlog", "rate", "arrivals", "activation", "max_workers", "drains"),
    [
        (0, 50.0, None, 0, 10, 0),  # nothing to do
        (0, 50.0, 0.0, 0, 10, 0),  # nothing waiting, nothing arriving
        (500, 0.0, None, 0, 10, 1),  # no rate yet: nothing to size with, the tick's pass alone
        (500, 0.0, 80.0, 0, 10, 1),  # arrivals but still no rate per drain
        (3_000, 50.0, None, 0, 10, 1),  # one drain clears 3,000 within the 60 s lag
        (3_001, 50.0, None, 0, 10, 2),  # one message more: a second drain
        (30_000, 50.0, None, 0, 10, 10),  # backlog / lag / rate = 10
        (30_000, 50.0, 100.0, 0, 20, 12),  # and 2 more to keep up with 100 msg/s arriving
        (900, 50.0, None, 1_000, 10, 1),  # under the activation threshold: one drain
        (900, 50.0, 120.0, 1_000, 10, 3),  # under it, but arrivals one drain cannot take
        (30_000, 50.0, 10_000.0, 0, 10, 11),  # arrivals beyond the cap's reach: cap + the tick's
        (1_000_000, 50.0, None, 0, 0, 1),  # cap 0: fan-out off, the tick's pass alone
    ],
)
def test_drains_wanted_clear_the_backlog_within_the_target_lag_and_keep_up_with_arrivals(
    backlog: int, rate: float, arrivals: float | None, activation: int, max_workers: int, drains: int
) -> None:
    wanted = drains_wanted(
        backlog=backlog,
        rate_per_drain=rate,
        arrivals_per_second=arrivals,
        target_lag_seconds=60,
        activation_backlog=activation,
        max_workers=max_workers,
    )
    assert wanted == drains


def test_arrivals_are_the_backlog_growth_plus_what_was_handled_between_two_readings() -> None:
    first = Reading(at_seconds=100.0, backlog=1_000, handled=0)
    assert arrival_rate(None, first) is None  # one reading: no rate yet
    assert arrival_rate(first, first) is None
    assert arrival_rate(first, Reading(110.0, 1_500, 1_000)) == 150.0  # +500 and 1,000 handled in 10 s
    assert arrival_rate(first, Reading(110.0, 0, 500)) == 0.0  # shrank faster than handled: none


@pytest.mark.parametrize(
    ("drains", "outstanding", "max_workers", "tokens"),
    [
        (0, 0, 10, 0),
        (1, 0, 10, 0),  # the tick's own pass is enough
        (6, 0, 10, 5),
        (6, 3, 10, 2),  # tops up: running or queued token passes count
        (6, 7, 10, 0),  # more than wanted already: none, and none taken back
        (50, 0, 10, 10),  # the cap
        (50, 4, 10, 6),
        (50, 0, 0, 0),
    ],
)
def test_tokens_top_the_token_passes_up_to_the_drains_wanted_within_the_cap(
    drains: int, outstanding: int, max_workers: int, tokens: int
) -> None:
    put = tokens_to_put(drains=drains, token_passes_outstanding=outstanding, max_workers=max_workers)
    assert put == tokens


def test_a_running_pass_whose_token_is_still_on_the_queue_is_counted_once() -> None:
    assert token_passes(tokens_in_queue=5, token_passes_running=2) == 5  # the 2 tokens are invisible
    assert token_passes(tokens_in_queue=1, token_passes_running=3) == 3  # tokens expired mid-pass


def test_a_token_round_trips_and_anything_else_is_refused() -> None:
    token = DrainToken(queue="in", issued_at=1_000.0, budget_seconds=60, fan_out_id="f")
    assert DrainToken.decode(token.encode()) == token
    assert not token.is_stale(now=1_060.0)
    assert token.is_stale(now=1_060.5)
    for text in (
        "",
        "not json",
        "[]",
        '{"queue": "in"}',
        token.encode().replace('"version":1', '"version":2'),
    ):
        with pytest.raises(BadToken):
            DrainToken.decode(text)


@pytest.mark.parametrize("value", ["UPPER", "ab", "a--b", "-ab", "x" * 64])
def test_a_bad_token_queue_name_is_refused_by_name(value: str) -> None:
    with pytest.raises(SettingsError, match="SQS_SCALE_OUT_QUEUE"):
        Settings.from_env({"SQS_INPUT_QUEUE": "in", "SQS_OUTPUT_QUEUE": "out", "SQS_SCALE_OUT_QUEUE": value})


def test_without_a_storage_setting_the_token_queue_names_what_to_set() -> None:
    with pytest.raises(StorageUnavailable, match="AzureWebJobsStorage__queueServiceUri"):
        token_queue_client("sqs-drain-tokens", {})


@pytest.fixture
def token_queue(storage_connection: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[QueueClient]:
    """A fresh token queue on Azurite, named in the app's settings; read raw, as the host reads it."""
    name = f"tokens-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("SQS_SCALE_OUT_QUEUE", name)
    reset_token_queue_clients()
    reset_pass_slot_clients()
    raw = QueueClient.from_connection_string(storage_connection, name)
    yield raw
    with contextlib.suppress(ResourceNotFoundError):
        raw.delete_queue()
    reset_token_queue_clients()
    reset_pass_slot_clients()


def tokens_on(raw: QueueClient) -> list[DrainToken]:
    """The tokens as the Functions host hands them over: base64-decoded (host.json messageEncoding)."""
    try:
        messages = list(raw.receive_messages(messages_per_page=32, visibility_timeout=60))
    except ResourceNotFoundError:  # no tick made the queue
        return []
    return [DrainToken.decode(base64.b64decode(m.content).decode()) for m in messages]


def fill(app_env: AppUnderTest, count: int, *, first: int = 0) -> None:
    """``count`` distinct messages (a FIFO queue would drop a body it saw in the last 5 minutes)."""
    fifo = app_env.queues.input_url.endswith(".fifo")
    messages = [
        OutgoingMessage(work_body(f"w{n}"), group_id=f"g{n % 8}" if fifo else None)
        for n in range(first, first + count)
    ]
    result = Sender(app_env.client, app_env.queues.input_url).send_batch(messages)
    assert result.failures == []


def slow_handler(seconds: float) -> Callable[[SqsMessage], None]:
    def handle(message: SqsMessage) -> None:
        time.sleep(seconds)

    return handle


def fan_out_logs(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.sqs_fan_out for r in caplog.records if r.msg.startswith("fan-out decided")]  # type: ignore[attr-defined]


def test_a_tick_that_falls_behind_puts_its_capped_tokens_on_the_storage_queue_and_frees_its_slot(
    app_env: AppUnderTest,
    token_queue: QueueClient,
    functions: Functions,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 4 handlers of 0.25 s: at most 16 messages/s. At the first sample (5 s) at least 610 of 700
    # are left: with a 2 s lag that wants 20 drains or more, so the cap of 3 token passes holds.
    monkeypatch.setenv("SQS_DRAIN_BUDGET_SECONDS", "8")
    monkeypatch.setenv("SQS_MAX_CONCURRENCY", "4")
    monkeypatch.setenv("SQS_SCALE_OUT_MAX_WORKERS", "3")
    monkeypatch.setenv("SQS_SCALE_OUT_TARGET_LAG_SECONDS", "2")
    monkeypatch.setenv("SQS_SCALE_OUT_ACTIVATION_BACKLOG", "0")
    monkeypatch.setattr(handler, "handle_message", slow_handler(0.25))
    fill(app_env, 700)
    before = time.time()

    with caplog.at_level(logging.INFO):
        functions["drain_input_queue_on_timer"](TimerRequest())

    [decision] = fan_out_logs(caplog)
    assert (decision["tokens"], decision["tokens_put"]) == (3, 3)
    assert decision["drains_wanted"] == 4  # capped: the 3 token passes and the tick's own
    tokens = tokens_on(token_queue)
    assert len(tokens) == 3
    assert {t.queue for t in tokens} == {app_env.settings.input_queue}
    assert {t.budget_seconds for t in tokens} == {8}
    assert len({t.fan_out_id for t in tokens}) == 1
    assert all(before <= t.issued_at <= time.time() for t in tokens)
    assert pass_slots(app_env.settings.input_queue).claim([TICK_SLOT]) is not None  # released


def test_a_tick_that_clears_the_queue_before_its_first_sample_puts_no_token(
    app_env: AppUnderTest, token_queue: QueueClient, functions: Functions, caplog: pytest.LogCaptureFixture
) -> None:
    fill(app_env, 20)

    with caplog.at_level(logging.INFO):
        functions["drain_input_queue_on_timer"](TimerRequest())

    assert fan_out_logs(caplog) == []
    assert queue_depth(app_env.client, app_env.queues.input_url).backlog == 0
    assert tokens_on(token_queue) == []


def test_fan_out_set_to_zero_puts_no_token_however_deep_the_backlog(
    app_env: AppUnderTest,
    token_queue: QueueClient,
    functions: Functions,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SQS_DRAIN_BUDGET_SECONDS", "8")
    monkeypatch.setenv("SQS_MAX_CONCURRENCY", "4")
    monkeypatch.setenv("SQS_SCALE_OUT_MAX_WORKERS", "0")
    monkeypatch.setattr(handler, "handle_message", slow_handler(0.25))
    fill(app_env, 700)

    with caplog.at_level(logging.INFO):
        functions["drain_input_queue_on_timer"](TimerRequest())

    assert fan_out_logs(caplog) == []
    assert tokens_on(token_queue) == []


def test_a_tick_whose_token_queue_is_unreachable_still_drains(
    app_env: AppUnderTest,
    functions: Functions,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setenv("SQS_DRAIN_BUDGET_SECONDS", "8")
    monkeypatch.setenv("SQS_MAX_CONCURRENCY", "4")
    monkeypatch.setattr(handler, "handle_message", slow_handler(0.25))
    fill(app_env, 700)

    with caplog.at_level(logging.INFO):
        functions["drain_input_queue_on_timer"](TimerRequest())

    assert any(
        "fan-out failed" in r.getMessage() and "AzureWebJobsStorage" in r.getMessage() for r in caplog.records
    )
    [finished] = [r.sqs_drain for r in caplog.records if r.msg.startswith("drain finished")]  # type: ignore[attr-defined]
    assert finished["succeeded"] > 0  # type: ignore[operator]


def host_message(raw: QueueClient) -> QueueMessage:
    """The next message on the queue as the host gives it to a queue trigger: base64-decoded body."""
    message = raw.receive_message(visibility_timeout=60)
    assert message is not None
    return QueueMessage(
        id=message.id,
        body=base64.b64decode(message.content),
        dequeue_count=message.dequeue_count,
        insertion_time=message.inserted_on,
        expiration_time=message.expires_on,
        pop_receipt=message.pop_receipt,
    )


def put_one(settings: Settings, token: DrainToken) -> None:
    assert put_tokens(token_queue_client(settings.scale_out_queue), [token]) == 1


def test_a_token_starts_one_drain_pass_that_empties_the_queue(
    app_env: AppUnderTest, token_queue: QueueClient, functions: Functions, caplog: pytest.LogCaptureFixture
) -> None:
    fill(app_env, 25)
    settings = Settings.from_env()
    put_one(settings, DrainToken(settings.input_queue, time.time(), settings.drain_budget_seconds, "t1"))

    with caplog.at_level(logging.INFO):
        functions["drain_input_queue_on_token"](host_message(token_queue))

    assert queue_depth(app_env.client, app_env.queues.input_url).backlog == 0
    [finished] = [r.sqs_drain for r in caplog.records if r.msg.startswith("drain finished")]  # type: ignore[attr-defined]
    assert (finished["succeeded"], finished["deleted"], finished["fan_out_id"]) == (25, 25, "t1")


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (
            lambda s: DrainToken(s.input_queue, time.time() - s.drain_budget_seconds - 1, 30, "old"),
            "past its",
        ),
        (lambda s: DrainToken("another-apps-queue", time.time(), 30, "other"), "this app drains"),
    ],
    ids=["older-than-its-budget", "for-another-queue"],
)
def test_a_token_the_app_must_not_run_is_dropped_unrun(
    app_env: AppUnderTest,
    token_queue: QueueClient,
    functions: Functions,
    caplog: pytest.LogCaptureFixture,
    make_token: Callable[[Settings], DrainToken],
    reason: str,
) -> None:
    fill(app_env, 5)
    settings = Settings.from_env()
    put_one(settings, make_token(settings))

    with caplog.at_level(logging.INFO):
        functions["drain_input_queue_on_token"](host_message(token_queue))

    assert any("dropped unrun" in r.getMessage() and reason in r.getMessage() for r in caplog.records)
    assert not any(r.msg.startswith("drain finished") for r in caplog.records)
    assert queue_depth(app_env.client, app_env.queues.input_url).backlog == 5


def test_a_message_that_is_no_token_is_dropped_with_an_error(
    app_env: AppUnderTest, token_queue: QueueClient, functions: Functions, caplog: pytest.LogCaptureFixture
) -> None:
    token_queue.create_queue()
    token_queue.send_message(base64.b64encode(b"hello").decode())

    with caplog.at_level(logging.INFO):
        functions["drain_input_queue_on_token"](host_message(token_queue))

    [dropped] = [r for r in caplog.records if "dropped unrun" in r.getMessage()]
    assert dropped.levelno == logging.ERROR and "not a drain token" in dropped.getMessage()
    assert not any(r.msg.startswith("drain finished") for r in caplog.records)


class Clock:
    """The fan-out's clock, moved by the test: samples 5 s apart without waiting for them."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def sample(fan_out: FanOut, clock: Clock, *, handled: int, seconds: float) -> None:
    """One progress sample of the tick's pass, ``seconds`` into it, ``handled`` messages done."""
    clock.now = 1_000.0 + seconds
    fan_out.on_progress(DrainSummary(succeeded=handled, duration_seconds=seconds))


def tick_fan_out(clock: Clock) -> FanOut:
    fan_out = fan_out_for(Settings.from_env(), clock=clock)
    assert fan_out is not None
    return fan_out


class FakePasses:
    """Token passes as the worker function runs them, minus the drain: take a token off the queue
    (it stays there, invisible, while the pass runs, as the host leaves it), then claim a slot."""

    def __init__(self, raw: QueueClient, settings: Settings) -> None:
        self.raw = raw
        self.settings = settings
        self.running: list[Lease] = []
        self.dropped = 0

    def take_tokens(self, count: int | None = None) -> None:
        messages = self.raw.receive_messages(messages_per_page=32, visibility_timeout=120)
        for taken, message in enumerate(messages):
            if count is not None and taken == count:
                break
            DrainToken.decode(base64.b64decode(message.content).decode())
            lease = claim_token_slot(self.settings)
            if lease is None:
                self.dropped += 1
                self.raw.delete_message(message)  # the host deletes a token once its function returns
            else:
                self.running.append(lease)

    def end_all(self) -> None:
        for lease in self.running:
            lease.release()
        self.running = []


def take(app_env: AppUnderTest, count: int) -> None:
    """Receive and delete ``count`` messages, as drains do."""
    client, url = app_env.client, app_env.queues.input_url
    while count > 0:
        batch = client.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, count), WaitTimeSeconds=1)
        messages = batch.get("Messages", [])
        for message in messages:
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        count -= len(messages)


def queued(raw: QueueClient) -> int:
    return int(raw.get_queue_properties().approximate_message_count or 0)


@pytest.fixture
def lag_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # One drain at 10 msg/s (50 handled in 5 s) clears 100 within the 10 s lag.
    monkeypatch.setenv("SQS_SCALE_OUT_TARGET_LAG_SECONDS", "10")
    # No tick arms a watchdog here, so the token queue's count is tokens alone (test_watchdog.py counts it).
    monkeypatch.setenv("SQS_WATCHDOG_MISSED_TICKS", "0")
    monkeypatch.setenv("SQS_SCALE_OUT_ACTIVATION_BACKLOG", "0")
    monkeypatch.setenv("SQS_SCALE_OUT_MAX_WORKERS", "20")


def test_a_backlog_and_a_measured_rate_put_the_tokens_wanted_and_a_growing_backlog_tops_them_up(
    app_env: AppUnderTest, token_queue: QueueClient, lag_settings: None
) -> None:
    fill(app_env, 600)
    clock = Clock()
    fan_out = tick_fan_out(clock)
    assert fan_out.start()

    sample(fan_out, clock, handled=50, seconds=5.0)  # 10 msg/s; 600 / 10 s lag / 10 = 6 drains
    first = fan_out.decisions[-1]
    assert (first.backlog, first.arrivals_per_second, first.drains, first.tokens) == (600, None, 6, 5)
    assert len(tokens_on(token_queue)) == 5

    fill(app_env, 400, first=600)  # the queue grows while the passes wait for instances
    sample(fan_out, clock, handled=100, seconds=10.0)
    second = fan_out.decisions[-1]
    # Arrivals: +400 on the queue and 50 handled in 5 s = 90 msg/s; (1,000 / 10 + 90) / 10 -> 19.
    assert (second.backlog, second.arrivals_per_second, second.drains) == (1_000, 90.0, 19)
    assert (second.token_passes_outstanding, second.tokens) == (5, 13)
    assert queued(token_queue) == 18
    fan_out.finish()


def test_running_and_queued_passes_are_counted_so_another_sample_or_tick_adds_none(
    app_env: AppUnderTest, token_queue: QueueClient, lag_settings: None
) -> None:
    fill(app_env, 600)
    clock = Clock()
    fan_out = tick_fan_out(clock)
    assert fan_out.start()
    sample(fan_out, clock, handled=50, seconds=5.0)
    passes = FakePasses(token_queue, app_env.settings)
    passes.take_tokens(2)  # two passes run, three tokens still wait
    assert (len(passes.running), queued(token_queue)) == (2, 5)

    take(app_env, 150)  # what the tick's pass and the two token passes handled in the next 5 s
    sample(fan_out, clock, handled=100, seconds=10.0)
    second = fan_out.decisions[-1]
    assert (second.backlog, second.arrivals_per_second, second.drains) == (450, 0.0, 5)
    assert (second.token_passes_outstanding, second.tokens) == (5, 0)

    overlapping = tick_fan_out(clock)
    assert not overlapping.start()  # the tick's slot is held: a second tick does not drain
    fan_out.finish()
    next_tick = tick_fan_out(clock)
    assert next_tick.start()
    sample(next_tick, clock, handled=50, seconds=5.0)
    assert (next_tick.decisions[-1].drains, next_tick.decisions[-1].tokens) == (5, 0)
    assert queued(token_queue) == 5
    next_tick.finish()
    passes.end_all()


def test_passes_running_never_exceed_the_cap_plus_the_ticks_across_overlapping_ticks_and_a_failed_write(
    app_env: AppUnderTest,
    token_queue: QueueClient,
    functions: Functions,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SQS_SCALE_OUT_TARGET_LAG_SECONDS", "1")
    monkeypatch.setenv("SQS_SCALE_OUT_ACTIVATION_BACKLOG", "0")
    monkeypatch.setenv("SQS_SCALE_OUT_MAX_WORKERS", "3")
    monkeypatch.setenv("SQS_WATCHDOG_MISSED_TICKS", "0")  # the queue's count is tokens alone
    fill(app_env, 300)
    settings = Settings.from_env()
    passes = FakePasses(token_queue, settings)
    slots = pass_slots(settings.input_queue)
    clock = Clock()
    peak = 0

    def observe() -> None:
        nonlocal peak
        peak = max(peak, slots.running() + slots.running(TICK_SLOT))

    first = tick_fan_out(clock)
    assert first.start()
    written: list[DrainToken] = []

    def put_one_then_fail(tokens: Sequence[DrainToken]) -> int:
        put_tokens(token_queue_client(settings.scale_out_queue), tokens[:1])
        written.extend(tokens[:1])
        raise ResourceNotFoundError("the storage account went away mid-write")

    real_put, first._put = first._put, put_one_then_fail
    sample(first, clock, handled=50, seconds=5.0)  # 300 / 1 s / 10 msg/s: 31 drains; 3 tokens, 1 written
    assert "ResourceNotFoundError" in first.errors[0] and len(written) == 1
    assert queued(token_queue) == 1
    first._put = real_put
    sample(first, clock, handled=100, seconds=10.0)  # the next sample tops up what got through
    assert queued(token_queue) == 3
    passes.take_tokens()
    observe()

    second = tick_fan_out(clock)  # a tick that overlaps the first, as a lost timer lock would
    assert not second.start()
    for _ in range(4):  # tokens of an older tick, or tokens delivered twice
        put_one(settings, DrainToken(settings.input_queue, time.time(), settings.drain_budget_seconds, "old"))
    passes.take_tokens()
    observe()
    with caplog.at_level(logging.INFO):  # and the worker function itself, given one more token
        put_one(settings, DrainToken(settings.input_queue, time.time(), settings.drain_budget_seconds, "x"))
        functions["drain_input_queue_on_token"](host_message(token_queue))
    observe()

    assert (len(passes.running), passes.dropped, peak) == (3, 4, 4)
    assert any("3 token passes already running" in r.getMessage() for r in caplog.records)
    assert not any(r.msg.startswith("drain finished") for r in caplog.records)
    # No pass beyond the cap drained.
    assert queue_depth(app_env.client, app_env.queues.input_url).backlog == 300
    first.finish()
    passes.end_all()


def test_a_tick_whose_slots_are_refused_drains_alone_and_a_token_without_a_slot_does_not_run(
    app_env: AppUnderTest,
    token_queue: QueueClient,
    storage_connection: str,
    functions: Functions,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings.from_env()
    put_one(settings, DrainToken(settings.input_queue, time.time(), settings.drain_budget_seconds, "t"))
    token = host_message(token_queue)
    wrong_key = base64.b64encode(b"not the account's key").decode()
    refused = ";".join(
        f"AccountKey={wrong_key}" if part.startswith("AccountKey=") else part
        for part in storage_connection.split(";")
    )
    monkeypatch.setenv("AzureWebJobsStorage", refused)  # as a missing role would: 403
    reset_pass_slot_clients()
    fill(app_env, 20)

    with caplog.at_level(logging.INFO):
        functions["drain_input_queue_on_token"](token)
    assert any("dropped unrun: no slot to run in" in r.getMessage() for r in caplog.records)
    assert queue_depth(app_env.client, app_env.queues.input_url).backlog == 20

    with caplog.at_level(logging.INFO):
        functions["drain_input_queue_on_timer"](TimerRequest())
    assert any("fan-out failed" in r.getMessage() for r in caplog.records)
    assert queue_depth(app_env.client, app_env.queues.input_url).backlog == 0


def test_a_pass_whose_lease_lapsed_and_was_taken_over_stops_and_the_taker_holds_the_slot(
    app_env: AppUnderTest, token_queue: QueueClient
) -> None:
    clock = Clock()
    slots = pass_slots(app_env.settings.input_queue, clock=clock)
    stalled = slots.claim([TICK_SLOT])
    assert stalled is not None
    assert slots.claim([TICK_SLOT]) is None  # held

    clock.now += LEASE_SECONDS + 1  # the first pass stalls past its lease
    taker = slots.claim([TICK_SLOT])
    assert taker is not None

    assert not stalled.renew() and stalled.lost.is_set()  # its ETag is stale: it stops receiving
    assert taker.renew() and slots.claim([TICK_SLOT]) is None
    stalled.release()  # a lost lease releases nothing
    assert slots.claim([TICK_SLOT]) is None
    taker.release()
    assert slots.claim([TICK_SLOT]) is not None
