"""FIFO: a group that is failing, backing off or slow never holds up the receiving of other groups.

The pass decides that the queue is empty from what its receives return, not from what it holds:
while a group waits in hand (its retries, its slow handler), the pass goes on polling for the
others. Against the real endpoint over HTTP; every time is taken on the test's side (when a send
returned, when the handler started) and held to a correctness bound, not a speed figure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.engine.consumer import DrainOptions, DrainSummary, SqsMessage, drain

from .conftest import AppUnderTest, MakeQueue, count_requests, drain_all, queue_depth
from .test_consumer import FAST, send

pytestmark = pytest.mark.slow


class Arrivals:
    """Sends group ``b``'s messages one by one on a schedule, noting when each was sent (SQS had
    it no earlier) and when the handler started it."""

    def __init__(self, client: SQSClient, url: str, at_seconds: list[float]) -> None:
        self.client = client
        self.url = url
        self.at_seconds = at_seconds
        self.arrived: dict[str, float] = {}
        self.handled: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._send, name="arrivals")

    def start(self) -> None:
        self.started = time.monotonic()
        self.thread.start()

    def _send(self) -> None:
        for number, at in enumerate(self.at_seconds):
            if self.stop.wait(max(0.0, self.started + at - time.monotonic())):
                return
            body = f"b-{number}"
            with self.lock:
                self.arrived[body] = time.monotonic()  # no later than SQS had it
            send(self.client, self.url, [body], group_of={body: "b"})

    def note(self, message: SqsMessage) -> None:
        with self.lock:
            self.handled.setdefault(message.body, time.monotonic())

    def join(self) -> None:
        self.stop.set()
        self.thread.join()

    def waits(self) -> dict[str, float]:
        """Seconds from each message's arrival to its handling (inf: never handled)."""
        return {
            body: round(self.handled.get(body, float("inf")) - arrived, 2)
            for body, arrived in self.arrived.items()
        }


def drain_with(
    client: SQSClient, url: str, handler: Callable[[SqsMessage], None], options: DrainOptions
) -> tuple[DrainSummary, int]:
    receives = count_requests(client, "ReceiveMessage")
    summary = drain(client, url, handler, options)
    return summary, receives["ReceiveMessage"]


def test_a_group_failing_through_all_its_attempts_never_delays_another_group(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(fifo=True, max_receive_count=5)
    send(app_env.client, queues.url, ["poison"], group_of={"poison": "a"})
    # Group a's attempts come at about 0, 2, 6, 14 and 30 s; b's messages arrive meanwhile.
    arrivals = Arrivals(app_env.client, queues.url, [1.0 + 3 * n for n in range(9)])
    attempts: list[int] = []

    def handler(message: SqsMessage) -> None:
        if message.body == "poison":
            attempts.append(message.receive_count)
            raise ValueError("cannot be handled")
        arrivals.note(message)

    options = replace(FAST, backoff_base_seconds=2, wait_time_seconds=2)
    arrivals.start()
    try:
        summary, receives = drain_with(app_env.client, queues.url, handler, options)
    finally:
        arrivals.join()

    waits = arrivals.waits()
    context = f"waits {waits}, {receives} receives, {summary}"
    print(f"\ngroup a failing: b's waits {waits}, {receives} receives in {summary.duration_seconds} s")
    assert attempts == [1, 2, 3, 4, 5], context
    assert len(waits) == 9, context
    # Each b message is handled within one receive wait, plus a second, of its arrival.
    assert max(waits.values()) <= options.wait_time_seconds + 1, context
    assert drain_all(app_env.client, queues.dlq_url) == ["poison"]
    assert queue_depth(app_env.client, queues.url).backlog == 0
    # Polling on while a group is held is not busy polling: about a poll a second at most.
    assert receives <= summary.duration_seconds + 10, context


def test_a_long_slow_group_never_delays_another_group_after_a_lull(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(fifo=True)
    slow = [f"s-{n}" for n in range(3)]
    send(app_env.client, queues.url, slow, group_of=dict.fromkeys(slow, "s"))
    # The first of b's messages comes after a lull longer than the linger (1 s).
    arrivals = Arrivals(app_env.client, queues.url, [2.5, 5.0, 7.5, 10.0])
    slow_done: list[str] = []

    def handler(message: SqsMessage) -> None:
        if message.body.startswith("s-"):
            time.sleep(4)  # 12 s for the group
            slow_done.append(message.body)
            return
        arrivals.note(message)

    options = replace(FAST, wait_time_seconds=2)
    arrivals.start()
    try:
        summary, receives = drain_with(app_env.client, queues.url, handler, options)
    finally:
        arrivals.join()

    waits = arrivals.waits()
    context = f"waits {waits}, {receives} receives, {summary}"
    print(f"\ngroup s slow: b's waits {waits}, {receives} receives in {summary.duration_seconds} s")
    assert slow_done == slow, context
    assert len(waits) == 4, context
    assert max(waits.values()) <= options.wait_time_seconds + 1, context
    assert queue_depth(app_env.client, queues.url).backlog == 0
