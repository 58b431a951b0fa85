"""Busy stays fast (SQS_POLL_WHILE_BUSY): while messages keep coming, a timer pass polls until its next
tick, and the passes after it do too until a quiet spell (SQS_QUIET_SPELL_SECONDS) has gone by without
one; a quiet queue's tick stays one short receive.

The policy's arithmetic is checked on ``Polling`` alone; what a pass does with it, against SQS (the
receives and the waits asked for, counted on the wire), and through the timer function.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from azure.functions.timer import TimerRequest

from {{ cookiecutter.package_name }}.engine.consumer import drain
from {{ cookiecutter.package_name }}.engine.consumer.receiving import LastMessage, Polling, PollWhileBusy

from .conftest import AppUnderTest, MakeQueue, Recorder, work_body
from .test_consumer import send
from .test_idle_tick import idle_options, record_waits

QUIET_SPELL = 60.0


def busy(
    next_tick: float, last_message: LastMessage | None = None, quiet: float = QUIET_SPELL
) -> PollWhileBusy:
    return PollWhileBusy(next_tick, quiet, last_message or LastMessage())


def test_a_message_makes_the_linger_run_until_the_next_tick() -> None:
    polling = Polling(idle_options(), started=100.0, busy=busy(next_tick=130.0))
    assert polling.linger_until == 101.0, "no message yet: an ordinary linger"
    polling.received(1, 10, sent_at=100.0, now=100.5)
    assert polling.linger_until == 130.0


def test_without_busy_a_message_only_restarts_the_linger() -> None:
    polling = Polling(idle_options(), started=100.0)
    polling.received(1, 10, sent_at=100.0, now=100.5)
    assert polling.linger_until == 101.5


def test_the_next_pass_starts_busy_until_the_quiet_spell_is_over() -> None:
    seen = LastMessage()
    first = Polling(idle_options(), started=100.0, busy=busy(130.0, seen))
    first.received(1, 10, sent_at=100.0, now=100.5)
    # The next tick's pass: busy to its own next tick, the last message being 29.5 s old.
    assert Polling(idle_options(), started=130.0, busy=busy(160.0, seen)).linger_until == 160.0
    # With a 40 s quiet spell it polls until 40 s after the last message, then ends.
    assert Polling(idle_options(), started=130.0, busy=busy(160.0, seen, quiet=40.0)).linger_until == 140.5
    # Once the quiet spell is over, passes end after the linger again.
    assert Polling(idle_options(), started=200.0, busy=busy(230.0, seen)).linger_until == 201.0


def test_busy_never_polls_past_the_next_tick() -> None:
    seen = LastMessage()
    seen.saw(100.0)
    polling = Polling(idle_options(), started=100.0, busy=busy(next_tick=105.0, last_message=seen))
    assert polling.linger_until == 105.0
    polling.received(1, 10, sent_at=104.0, now=104.5)
    assert polling.linger_until == 105.5, (
        "the linger still runs from the message; the spell stops at the tick"
    )


@pytest.mark.slow
def test_a_busy_pass_handles_what_comes_after_the_linger_would_have_ended(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    waits = record_waits(app_env.client)
    recorder = Recorder()
    send(app_env.client, queues.url, ["first"])
    # 2.5 s in: the 1 s linger after "first" is long over.
    later = threading.Timer(2.5, lambda: send(app_env.client, queues.url, ["second"]))
    later.start()
    started = time.monotonic()
    try:
        summary = drain(
            app_env.client,
            queues.url,
            recorder.success,
            idle_options(),
            busy=busy(next_tick=started + 5),
        )
    finally:
        later.cancel()

    assert recorder.succeeded == ["first", "second"]
    assert summary.stopped_because == "queue_empty"
    assert waits[0] == 1, "the first poll waits for the linger: the queue may be quiet"
    assert max(waits) > 1, "after a message, the polls wait towards the next tick"
    assert time.monotonic() - started >= 4.5, "the pass polled until the next tick"


@pytest.mark.slow
def test_a_quiet_queue_with_busy_stays_fast_on_is_one_short_receive(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    waits = record_waits(app_env.client)

    summary = drain(
        app_env.client,
        queues.url,
        Recorder().success,
        idle_options(),
        busy=busy(next_tick=time.monotonic() + 30),
    )

    assert waits == [1], "as without busy stays fast: the idle tick bills the same"
    assert summary.stopped_because == "queue_empty"


@pytest.mark.slow
def test_the_pass_after_a_busy_one_takes_a_message_the_linger_alone_would_miss(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    seen = LastMessage()
    recorder = Recorder()
    send(app_env.client, queues.url, ["in the first pass"])
    drain(app_env.client, queues.url, recorder.success, idle_options(), busy=busy(time.monotonic() + 1, seen))
    later = threading.Timer(2.0, lambda: send(app_env.client, queues.url, ["in the second pass"]))
    later.start()
    try:
        summary = drain(
            app_env.client,
            queues.url,
            recorder.success,
            idle_options(),
            busy=busy(time.monotonic() + 3, seen),
        )
    finally:
        later.cancel()

    assert recorder.succeeded == ["in the first pass", "in the second pass"]
    assert summary.received == 1


Functions = dict[str, Callable[..., object]]


@pytest.mark.slow
@pytest.mark.parametrize("poll_while_busy", ["true", "false"])
def test_the_timer_stays_fast_while_busy_when_asked(
    app_env: AppUnderTest,
    functions: Functions,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    poll_while_busy: str,
) -> None:
    from .test_drain_function import put, summaries

    monkeypatch.setenv("SQS_POLL_WHILE_BUSY", poll_while_busy)
    monkeypatch.setenv("SQS_POLL_UNTIL_NEXT_TICK", "false")
    put(app_env, [work_body("first")])
    # The host's ScheduleStatus: the next tick 5 s away; the tick ran late (past due).
    next_tick = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    timer = TimerRequest(
        past_due=True, schedule_status={"Last": datetime.now(UTC).isoformat(), "Next": next_tick}
    )
    later = threading.Timer(2.5, lambda: put(app_env, [work_body("second")]))
    later.start()
    try:
        with caplog.at_level(logging.INFO):
            functions["drain_input_queue_on_timer"](timer)
    finally:
        later.join()

    [fields] = summaries(caplog)
    assert fields["succeeded"] == (2 if poll_while_busy == "true" else 1)
    past_due = any(r.msg.startswith("drain timer is past due") for r in caplog.records)
    # A busy pass makes the next tick past due by design: nothing to tell.
    assert past_due is (poll_while_busy == "false")
