"""An idle tick ends after about a second: a short first poll, the linger, then done.

Counted on the wire: the number of receives and the wait each asked SQS for. The pass's
duration is checked only as a correctness bound (a 20 s long poll would break it).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.engine.consumer import DrainOptions, drain
from {{ cookiecutter.package_name }}.engine.settings import Settings

from .conftest import AppUnderTest, MakeQueue, Recorder
from .test_consumer import send

pytestmark = pytest.mark.slow


def record_waits(client: SQSClient) -> list[int]:
    waits: list[int] = []

    def record(params: dict[str, Any], **_: object) -> None:
        waits.append(int(params["WaitTimeSeconds"]))

    client.meta.events.register("before-parameter-build.sqs.ReceiveMessage", record)
    return waits


def idle_options() -> DrainOptions:
    """The app's defaults: SQS_WAIT_TIME_SECONDS 20, SQS_LINGER_SECONDS 1."""
    settings = Settings.from_env({"SQS_INPUT_QUEUE": "in", "SQS_OUTPUT_QUEUE": "out"})
    return DrainOptions.from_settings(settings)


def test_an_idle_tick_is_one_receive_that_waits_one_second(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    waits = record_waits(app_env.client)
    options = idle_options()
    assert (options.wait_time_seconds, options.linger_seconds) == (20, 1.0)

    summary = drain(app_env.client, queues.url, Recorder().success, options)

    assert waits == [1]
    assert summary.stopped_because == "queue_empty"
    assert summary.duration_seconds < 5  # a correctness bound: one 20 s long poll would break it


def test_no_linger_is_one_short_poll(app_env: AppUnderTest, make_queue: MakeQueue) -> None:
    queues = make_queue()
    waits = record_waits(app_env.client)

    drain(app_env.client, queues.url, Recorder().success, replace(idle_options(), linger_seconds=0))

    assert waits == [0]


@pytest.mark.parametrize("longest_wait", [20, 2])
def test_a_message_sent_during_the_linger_is_handled_by_the_same_pass(
    app_env: AppUnderTest, make_queue: MakeQueue, longest_wait: int
) -> None:
    queues = make_queue()
    waits = record_waits(app_env.client)
    recorder = Recorder()
    linger = 3
    options = replace(idle_options(), linger_seconds=linger, wait_time_seconds=longest_wait)
    later = threading.Timer(1.0, lambda: send(app_env.client, queues.url, ["late"]))
    later.start()
    started = time.monotonic()
    try:
        summary = drain(app_env.client, queues.url, recorder.success, options)
    finally:
        later.cancel()

    assert recorder.succeeded == ["late"]
    assert summary.stopped_because == "queue_empty"
    # Each poll waits for what is left of the linger, at most SQS_WAIT_TIME_SECONDS.
    assert waits[0] == min(linger, longest_wait)
    assert all(0 < wait <= min(linger, longest_wait) for wait in waits), waits
    # The linger started again at the message: the pass went on that long after it.
    assert time.monotonic() - started >= 1 + linger - 0.5


def test_a_pass_asked_to_poll_until_the_next_tick_handles_what_comes_meanwhile(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    # With the 1 s linger alone the pass would have ended before the message came.
    queues = make_queue()
    waits = record_waits(app_env.client)
    recorder = Recorder()
    later = threading.Timer(2.0, lambda: send(app_env.client, queues.url, ["meanwhile"]))
    later.start()
    try:
        summary = drain(
            app_env.client, queues.url, recorder.success, idle_options(), poll_until=time.monotonic() + 4
        )
    finally:
        later.cancel()

    assert recorder.succeeded == ["meanwhile"]
    assert summary.stopped_because == "queue_empty"
    assert waits[0] == 4, "the first poll waits until the next tick"


def test_the_timer_passes_the_hosts_next_occurrence_to_the_drain() -> None:
    from datetime import UTC, datetime

    from azure.functions.timer import TimerRequest

    from {{ cookiecutter.package_name }}.functions.sqs_trigger import next_occurrence

    status = {"Last": "2026-12-02T05:05:00+00:00", "Next": "2026-12-02T05:06:00+00:00"}
    assert next_occurrence(TimerRequest(schedule_status=status)) == datetime(2026, 12, 2, 5, 6, tzinfo=UTC)
    assert next_occurrence(TimerRequest()) is None
    assert next_occurrence(TimerRequest(schedule_status={"Next": "soon"})) is None
