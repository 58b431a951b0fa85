"""Scale-out: the tick's fan-out decision, its tokens on a real Storage queue (Azurite), and the
queue-triggered drain they start, against SQS over HTTP."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient

from {{ cookiecutter.package_name }} import handler
from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage
from {{ cookiecutter.package_name }}.engine.producer import OutgoingMessage, Sender
from {{ cookiecutter.package_name }}.engine.scale_out.decision import decide_fan_out
from {{ cookiecutter.package_name }}.engine.scale_out.drain_token import BadToken, DrainToken
from {{ cookiecutter.package_name }}.engine.scale_out.token_queue import (
    put_tokens,
    reset_token_queue_clients,
    token_queue_client,
)
from {{ cookiecutter.package_name }}.engine.settings import Settings, SettingsError
from {{ cookiecutter.package_name }}.engine.storage_account import StorageUnavailable

from .conftest import AppUnderTest, queue_depth

pytestmark = pytest.mark.slow

Functions = dict[str, Callable[..., object]]


@pytest.mark.parametrize(
    ("backlog", "rate", "budget", "max_workers", "passes", "tokens"),
    [
        (0, 50.0, 60, 10, 0, 0),  # nothing to do
        (2_999, 50.0, 60, 10, 1, 0),  # one pass clears it (3,000 per budget)
        (3_000, 50.0, 60, 10, 1, 0),  # exactly one pass
        (3_001, 50.0, 60, 10, 2, 1),  # one message too many: one more pass
        (30_000, 50.0, 60, 10, 10, 9),  # this pass + 9
        (1_000_000, 50.0, 60, 10, 334, 10),  # capped
        (1_000_000, 50.0, 60, 0, 1, 0),  # 0 turns fan-out off
        (500, 0.0, 60, 10, 1, 0),  # no rate yet: no decision to act on
        (10_000, 0.5, 1_500, 3, 14, 3),  # a slow handler on a long budget
    ],
)
def test_fan_out_asks_for_the_passes_that_clear_the_backlog_within_one_budget(
    backlog: int, rate: float, budget: float, max_workers: int, passes: int, tokens: int
) -> None:
    decision = decide_fan_out(
        backlog=backlog, rate_per_second=rate, budget_seconds=budget, max_workers=max_workers
    )
    assert (decision.passes_needed, decision.tokens) == (passes, tokens)


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
    raw = QueueClient.from_connection_string(storage_connection, name)
    yield raw
    with contextlib.suppress(ResourceNotFoundError):
        raw.delete_queue()
    reset_token_queue_clients()


def tokens_on(raw: QueueClient) -> list[DrainToken]:
    """The tokens as the Functions host hands them over: base64-decoded (host.json messageEncoding)."""
    try:
        messages = list(raw.receive_messages(messages_per_page=32, visibility_timeout=60))
    except ResourceNotFoundError:  # no tick made the queue
        return []
    return [DrainToken.decode(base64.b64decode(m.content).decode()) for m in messages]


def fill(app_env: AppUnderTest, count: int) -> None:
    fifo = app_env.queues.input_url.endswith(".fifo")
    messages = [
        OutgoingMessage(json.dumps({"id": f"w{n}", "action": "work"}), group_id=f"g{n % 8}" if fifo else None)
        for n in range(count)
    ]
    result = Sender(app_env.client, app_env.queues.input_url).send_batch(messages)
    assert result.failures == []


def slow_handler(seconds: float) -> Callable[[SqsMessage], None]:
    def handle(message: SqsMessage) -> None:
        time.sleep(seconds)

    return handle


def fan_out_logs(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.sqs_fan_out for r in caplog.records if r.msg.startswith("fan-out decided")]  # type: ignore[attr-defined]


def test_a_tick_that_cannot_clear_the_backlog_puts_its_capped_tokens_on_the_storage_queue(
    app_env: AppUnderTest,
    token_queue: QueueClient,
    functions: Functions,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 4 handlers of 0.25 s: at most 16 messages/s, 128 per 8 s budget. At the first sample (5 s) at
    # least 610 of 700 are left: 5 passes or more, so the cap of 3 more holds.
    monkeypatch.setenv("SQS_DRAIN_BUDGET_SECONDS", "8")
    monkeypatch.setenv("SQS_MAX_CONCURRENCY", "4")
    monkeypatch.setenv("SQS_SCALE_OUT_MAX_WORKERS", "3")
    monkeypatch.setattr(handler, "handle_message", slow_handler(0.25))
    fill(app_env, 700)
    before = time.time()

    with caplog.at_level(logging.INFO):
        functions["drain_input_queue_on_timer"](TimerRequest())

    [decision] = fan_out_logs(caplog)
    assert (decision["tokens"], decision["tokens_put"]) == (3, 3)
    assert decision["passes_needed"] >= 5  # type: ignore[operator]
    tokens = tokens_on(token_queue)
    assert len(tokens) == 3  # one decision per tick: no more than it asked for
    assert {t.queue for t in tokens} == {app_env.settings.input_queue}
    assert {t.budget_seconds for t in tokens} == {8}
    assert len({t.fan_out_id for t in tokens}) == 1
    assert all(before <= t.issued_at <= time.time() for t in tokens)


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
