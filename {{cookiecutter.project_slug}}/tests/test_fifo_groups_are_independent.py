"""FIFO: a group that is failing, backing off or slow never holds up the receiving of other groups.

The pass decides that the queue is empty from what its receives return, not from what it holds:
while a group waits in hand (its retries, its slow handler), the pass goes on polling for the
others. A group that waits (for its next retry, for a delete SQS refused) does so out of its
handler slot, so it never keeps another group's handler from running either; and the groups
waiting at once are bounded. Against the real endpoint over HTTP; every time is taken on the
test's side (when a send returned, when the handler started) and held to a correctness bound,
not a speed figure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.engine.consumer import DrainOptions, DrainSummary, SqsMessage, drain

from .conftest import AppUnderTest, BatchEntryFaults, MakeQueue, count_requests, drain_all, queue_depth
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


def test_a_group_backing_off_does_not_hold_a_handler_slot_from_another_group(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    """One slot (SQS_MAX_CONCURRENCY=1, as for a rate-limited downstream; or as many failing groups
    as slots at the default): group a waits for its retries out of the slot, so b's messages run."""
    queues = make_queue(fifo=True, max_receive_count=5)
    send(app_env.client, queues.url, ["poison"], group_of={"poison": "a"})
    arrivals = Arrivals(app_env.client, queues.url, [1.0 + 3 * n for n in range(5)])

    def handler(message: SqsMessage) -> None:
        if message.body == "poison":
            raise ValueError("cannot be handled")
        arrivals.note(message)

    options = replace(FAST, backoff_base_seconds=2, wait_time_seconds=2, max_concurrency=1)
    arrivals.start()
    try:
        summary = drain(app_env.client, queues.url, handler, options)
    finally:
        arrivals.join()

    waits = arrivals.waits()
    assert drain_all(app_env.client, queues.dlq_url) == ["poison"]
    # Handled within one receive wait, plus a second, of arrival (issue 23's bound).
    assert max(waits.values()) <= options.wait_time_seconds + 1, f"waits {waits}, {summary}"
    assert summary.peak_waiting >= 1, summary  # the poison waited out of the slot


def test_a_group_waiting_for_a_refused_delete_does_not_hold_a_handler_slot(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    """Two slots: group s's slow handler holds one; group a's first delete is refused for 5 s, and a
    waits for it (its retries pause 0.25, 0.5, 1, 2, 4 s) out of the other, where b's messages run."""
    queues = make_queue(fifo=True)
    send(app_env.client, queues.url, ["a-0", "a-1"], group_of={"a-0": "a", "a-1": "a"})
    send(app_env.client, queues.url, ["slow"], group_of={"slow": "s"})
    receipts: dict[str, str] = {}
    order: list[str] = []
    refused_until: list[float] = []

    def refusing(entry: dict[str, object]) -> bool:
        if entry["ReceiptHandle"] != receipts.get("a-0"):
            return False
        if not refused_until:
            refused_until.append(time.monotonic() + 5)
        return time.monotonic() < refused_until[0]

    faults = BatchEntryFaults(
        app_env.client, "DeleteMessageBatch", refusing, times=100, sender_fault=False, whole_calls=True
    )
    arrivals = Arrivals(app_env.client, queues.url, [1.0, 2.5])

    def handler(message: SqsMessage) -> None:
        if message.body.startswith("b-"):
            arrivals.note(message)
            return
        receipts[message.body] = message.receipt_handle
        order.append(message.body)
        if message.body == "slow":
            time.sleep(10)

    options = replace(FAST, wait_time_seconds=2, max_concurrency=2)
    arrivals.start()
    try:
        summary = drain(app_env.client, queues.url, handler, options)
    finally:
        arrivals.join()
        faults.remove()

    waits = arrivals.waits()
    context = f"waits {waits}, refused {len(faults.injected)} times, {summary}"
    assert [body for body in order if body.startswith("a-")] == ["a-0", "a-1"], context  # in order, once
    assert len(faults.injected) >= 3 and summary.delete_failed == 0, context
    assert max(waits.values()) <= options.wait_time_seconds + 1, context
    assert queue_depth(app_env.client, queues.url).backlog == 0


def test_many_failing_groups_wait_out_of_their_slots_within_a_bound(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    """Each failing group waits for its retry in hand, held and heartbeated; once as many wait as
    the bound (SQS_MAX_CONCURRENCY, at least 10), receiving pauses: a pass never takes in every
    failing group of a queue, whatever their number."""
    groups = 30
    queues = make_queue(fifo=True, max_receive_count=5)
    bodies = [f"poison-{n:02d}" for n in range(groups)]
    send(app_env.client, queues.url, bodies, group_of={body: body for body in bodies})

    def handler(_: SqsMessage) -> None:
        raise ValueError("cannot be handled")

    options = replace(FAST, max_concurrency=1, backoff_base_seconds=30, budget_seconds=6)
    summary = drain(app_env.client, queues.url, handler, options)

    bound = max(options.max_concurrency, 10)
    context = f"{summary}"
    assert bound <= summary.peak_waiting <= bound + 2, context  # it filled up to the bound, no further
    assert summary.received <= bound + 4, context  # what waits, and what was on its way to a slot
    # Each ran once, or went back unstarted at the budget's end; none moved, none lost.
    assert summary.failed + summary.released == summary.received, context
    assert queue_depth(app_env.client, queues.url).backlog == groups, context
