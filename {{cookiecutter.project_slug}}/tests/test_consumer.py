"""The consumer against a real SQS endpoint: failures, the DLQ, the heartbeat, FIFO order, the budget."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.engine.consumer import (
    DependencyUnavailable,
    DrainOptions,
    DrainSummary,
    Handler,
    SqsMessage,
    drain,
)
from {{ cookiecutter.package_name }}.engine.producer import OutgoingMessage, Sender

from .conftest import (
    AppUnderTest,
    BatchEntryFaults,
    MakeQueue,
    Recorder,
    count_requests,
    drain_all,
    queue_depth,
)

pytestmark = pytest.mark.slow

# Short waits keep the suite fast; backoff 0 brings a failed message back at once.
FAST = DrainOptions(
    wait_time_seconds=1,
    max_concurrency=16,
    budget_seconds=60,
    visibility_timeout_seconds=30,
    backoff_base_seconds=0,
)


def send(client: SQSClient, url: str, bodies: list[str], group_of: dict[str, str] | None = None) -> None:
    groups = group_of or {}
    result = Sender(client, url).send_batch([OutgoingMessage(b, group_id=groups.get(b)) for b in bodies])
    assert result.failures == []


def drain_until_empty(
    client: SQSClient, url: str, handler: Handler, options: DrainOptions = FAST, passes: int = 6
) -> list[DrainSummary]:
    """Drain passes, as timer ticks would run them, until nothing is left on the queue."""
    summaries = []
    for _ in range(passes):
        summaries.append(drain(client, url, handler, options))
        if queue_depth(client, url).backlog == 0:
            break
    return summaries


def test_500_messages_with_random_first_try_failures_end_processed_and_none_is_lost(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(max_receive_count=3)
    bodies = [f"m-{n:03d}" for n in range(500)]
    send(app_env.client, queues.url, bodies)
    seed = random.randrange(1_000_000)
    fails_first_try = {b for b in bodies if random.Random(f"{seed}:{b}").random() < 0.3}
    recorder = Recorder()

    def handler(message: SqsMessage) -> None:
        recorder.called(message)
        if message.receive_count == 1 and message.body in fails_first_try:
            raise RuntimeError("fails on its first try")
        recorder.success(message)

    summaries = drain_until_empty(app_env.client, queues.url, handler)

    context = f"seed {seed}, {len(fails_first_try)} failing first tries, summaries {summaries}"
    in_dlq = drain_all(app_env.client, queues.dlq_url)
    assert sorted(set(recorder.succeeded) | set(in_dlq)) == bodies, context  # none lost
    assert in_dlq == [], context  # only first tries fail; maxReceiveCount is 3
    duplicates = recorder.duplicates()
    print(f"500 messages: {len(fails_first_try)} first-try failures, {duplicates} duplicates ({context})")
    assert duplicates == 0, context
    assert sum(s.failed for s in summaries) == len(fails_first_try), context
    assert sum(s.deleted for s in summaries) == 500, context
    assert queue_depth(app_env.client, queues.url).backlog == 0


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
def test_progress_samples_go_on_while_the_last_slow_handler_finishes(
    app_env: AppUnderTest, make_queue: MakeQueue, fifo: bool
) -> None:
    """Once receiving stops, the pass waits for its running handlers: its samples go on meanwhile, as
    they renew the pass's slot and push the watchdog back (a silent close looked like a dead pass, and
    the watchdog drained beside it)."""
    queues = make_queue(fifo=fifo)
    send(app_env.client, queues.url, ["slow"], {"slow": "g"} if fifo else None)
    samples: list[float] = []
    begun = time.monotonic()
    summary = drain(
        app_env.client,
        queues.url,
        lambda _: time.sleep(4),
        replace(FAST, wait_time_seconds=0, linger_seconds=0.5),
        progress=lambda _: samples.append(time.monotonic() - begun),
        progress_every_seconds=0.5,
    )
    ended = time.monotonic() - begun

    assert summary.deleted == 1, summary
    assert ended >= 4
    assert [t for t in samples if t > ended - 1.5], (samples, ended)  # receiving stopped ~3 s before


def test_a_poison_message_reaches_the_dlq_after_max_receive_count_while_the_rest_flow(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(max_receive_count=3)
    good = [f"good-{n:02d}" for n in range(30)]
    send(app_env.client, queues.url, ["poison", *good])
    recorder = Recorder()

    def handler(message: SqsMessage) -> None:
        recorder.called(message)
        if message.body == "poison":
            raise ValueError("cannot be handled")
        recorder.success(message)

    quick = replace(FAST, wait_time_seconds=0)
    first = drain(app_env.client, queues.url, handler, quick)
    assert sorted(recorder.succeeded) == good  # the poison message blocks nobody
    drain_until_empty(app_env.client, queues.url, handler, quick)

    assert drain_all(app_env.client, queues.dlq_url) == ["poison"]
    assert [count for body, count in recorder.calls if body == "poison"] == [1, 2, 3]
    assert first.deleted == 30
    assert queue_depth(app_env.client, queues.url).backlog == 0


def test_a_handler_slower_than_the_visibility_timeout_runs_once_thanks_to_the_heartbeat(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(visibility_timeout=3)
    send(app_env.client, queues.url, ["slow"])
    options = DrainOptions(
        wait_time_seconds=1, max_concurrency=4, budget_seconds=30, visibility_timeout_seconds=3
    )
    recorder = Recorder()

    def slow_handler(message: SqsMessage) -> None:
        recorder.called(message)
        time.sleep(4.5)  # half as long again as the visibility timeout
        recorder.success(message)

    results: list[DrainSummary] = []
    first = threading.Thread(
        target=lambda: results.append(drain(app_env.client, queues.url, slow_handler, options))
    )
    first.start()
    while not recorder.calls and first.is_alive():
        time.sleep(0.05)
    # Meanwhile a second consumer polls all along, as another instance would.
    others = []
    while first.is_alive():
        others.append(drain(app_env.client, queues.url, slow_handler, options))
    first.join()

    assert recorder.calls == [("slow", 1)]
    assert recorder.succeeded == ["slow"]
    assert results[0].heartbeats >= 2
    assert sum(o.received for o in others) == 0
    assert queue_depth(app_env.client, queues.url).backlog == 0


def test_fifo_keeps_the_order_of_each_group_under_failures(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(fifo=True, max_receive_count=10)
    groups = ["a", "b", "c", "d"]
    bodies = [f"{group}:{n:02d}" for n in range(12) for group in groups]
    send(app_env.client, queues.url, bodies, group_of={b: b.split(":")[0] for b in bodies})
    done: dict[str, list[int]] = defaultdict(list)
    running: set[str] = set()
    overlaps: list[str] = []
    seen: set[str] = set()
    lock = threading.Lock()

    def handler(message: SqsMessage) -> None:
        group, number = message.body.split(":")
        assert message.group_id == group
        with lock:
            if group in running:
                overlaps.append(message.body)
            running.add(group)
            first_try = message.body not in seen
            seen.add(message.body)
        try:
            time.sleep(0.01)
            if int(number) % 4 == 1 and first_try:
                raise RuntimeError("fails on its first try")
            with lock:
                done[group].append(int(number))
        finally:
            with lock:
                running.discard(group)

    # A real backoff: a failed message and the rest of its group come back after 1 s, as they
    # would in production (a zero backoff hid moto's FIFO bug; see test_emulator_fidelity.py).
    options = replace(FAST, backoff_base_seconds=1)
    summaries = drain_until_empty(app_env.client, queues.url, handler, options, 15)

    assert {group: done[group] for group in groups} == {group: list(range(12)) for group in groups}, summaries
    assert overlaps == []  # one message of a group at a time
    assert sum(s.failed for s in summaries) == 3 * len(groups)
    assert sum(s.released for s in summaries) == 0  # retried inside the pass: no group went back to SQS
    assert drain_all(app_env.client, queues.dlq_url) == []


def test_a_drain_returns_within_its_budget_plus_one_long_poll(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    send(app_env.client, queues.url, [f"m-{n}" for n in range(200)])
    options = DrainOptions(
        wait_time_seconds=2, max_concurrency=2, budget_seconds=2, visibility_timeout_seconds=30
    )

    def handler(_: SqsMessage) -> None:
        time.sleep(0.05)

    summary = drain(app_env.client, queues.url, handler, options)

    assert summary.stopped_because == "budget"
    # A correctness bound, not a speed claim: the budget, one long poll, and a generous margin
    # for the running handlers and the last acks.
    assert summary.duration_seconds <= options.budget_seconds + options.wait_time_seconds + 3
    # Each received message was handled and deleted, or (not started at the budget) released.
    assert summary.received == summary.succeeded + summary.released
    assert summary.succeeded == summary.deleted > 0
    # The rest wait, none lost.
    assert queue_depth(app_env.client, queues.url).backlog == 200 - summary.deleted


def test_delete_batch_entries_that_fail_are_retried(app_env: AppUnderTest, make_queue: MakeQueue) -> None:
    queues = make_queue()
    bodies = [f"m-{n:02d}" for n in range(25)]
    send(app_env.client, queues.url, bodies)
    faults = BatchEntryFaults(app_env.client, "DeleteMessageBatch", lambda entry: True, times=3)
    recorder = Recorder()
    try:
        summary = drain(app_env.client, queues.url, recorder.success, replace(FAST, ack_linger_seconds=0.5))
    finally:
        faults.remove()

    assert len(faults.injected) == 3
    assert (summary.deleted, summary.delete_failed) == (25, 0)
    assert queue_depth(app_env.client, queues.url).backlog == 0
    assert sorted(recorder.succeeded) == bodies


def test_a_delete_sqs_fails_for_a_moment_is_retried_after_a_pause(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    """Standard queue: SQS fails the delete entry (InternalError) for 0.4 s from the first failure;
    the retries pause 0.25 s, then 0.5 s, so the third attempt lands, where three attempts back to
    back would all fail within milliseconds and the message would run again."""
    queues = make_queue(visibility_timeout=4)
    send(app_env.client, queues.url, ["one"])
    failing_until: list[float] = []

    def failing(_: dict[str, object]) -> bool:
        if not failing_until:
            failing_until.append(time.monotonic() + 0.4)
        return time.monotonic() < failing_until[0]

    faults = BatchEntryFaults(app_env.client, "DeleteMessageBatch", failing, times=10, whole_calls=True)
    recorder = Recorder()
    options = replace(FAST, visibility_timeout_seconds=4)
    try:
        summary = drain(app_env.client, queues.url, recorder.success, options)
    finally:
        faults.remove()
    # Had it been given up on, it would come back when its visibility ends.
    later = drain(
        app_env.client, queues.url, recorder.success, replace(options, wait_time_seconds=5, linger_seconds=5)
    )

    context = f"failed {len(faults.injected)} times, {summary}, {later}"
    assert len(faults.injected) == 2, context
    assert (summary.deleted, summary.delete_failed) == (1, 0), context
    assert recorder.succeeded == ["one"], context


def test_a_delete_that_sqs_refuses_for_good_is_reported_and_the_message_comes_back(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    send(app_env.client, queues.url, ["one", "two", "three"])
    faults = BatchEntryFaults(
        app_env.client,
        "DeleteMessageBatch",
        lambda entry: True,
        times=1,
        sender_fault=True,
        code="ReceiptHandleIsInvalid",
    )
    recorder = Recorder()
    # A long linger puts the three deletes in one batch, so one entry can fail alone.
    options = DrainOptions(wait_time_seconds=1, visibility_timeout_seconds=2, ack_linger_seconds=1.0)
    try:
        summary = drain(app_env.client, queues.url, recorder.success, options)
    finally:
        faults.remove()

    assert faults.injected != []
    assert (summary.succeeded, summary.deleted, summary.delete_failed) == (3, 2, 1)  # not retried
    assert queue_depth(app_env.client, queues.url).backlog == 1  # at least once: it comes back


def visible_count(client: SQSClient, url: str) -> int:
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_a_stop_releases_the_messages_not_yet_started_while_handlers_still_run(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    send(app_env.client, queues.url, ["first", "second", "third"])
    started, release, stop = threading.Event(), threading.Event(), threading.Event()

    def blocking_handler(_: SqsMessage) -> None:
        started.set()
        release.wait(timeout=60)

    # One handler slot: the second message waits in the pool (prefetched), the third on the queue.
    options = DrainOptions(
        wait_time_seconds=1, max_concurrency=1, budget_seconds=60, visibility_timeout_seconds=30
    )
    summaries: list[DrainSummary] = []
    worker = threading.Thread(
        target=lambda: summaries.append(
            drain(app_env.client, queues.url, blocking_handler, options, stop=stop)
        )
    )
    worker.start()
    try:
        assert started.wait(timeout=30)
        assert wait_until(lambda: visible_count(app_env.client, queues.url) == 1, timeout=15)  # 2 in hand
        stop.set()
        # Bounds on a condition, not on speed: the handler still blocks, so only a release shows.
        assert wait_until(lambda: visible_count(app_env.client, queues.url) == 2, timeout=15)
    finally:
        release.set()
        worker.join(timeout=60)

    [summary] = summaries
    assert (summary.stopped_because, summary.succeeded, summary.released) == ("stop_requested", 1, 1)
    assert queue_depth(app_env.client, queues.url).backlog == 2  # none lost


@pytest.mark.parametrize(
    ("receive_count", "seconds"), [(1, 5), (2, 10), (3, 20), (6, 160), (7, 300), (60, 300)]
)
def test_the_backoff_doubles_with_each_receive_up_to_its_cap(receive_count: int, seconds: int) -> None:
    options = DrainOptions(backoff_base_seconds=5, backoff_max_seconds=300)
    assert options.backoff_seconds(receive_count) == seconds


def test_the_backoff_never_passes_the_sqs_maximum_of_12_hours() -> None:
    assert DrainOptions(backoff_base_seconds=60, backoff_max_seconds=10**6).backoff_seconds(30) == 43_200


def test_a_failed_message_gets_its_backoff_from_sqs_and_stays_hidden(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    send(app_env.client, queues.url, ["fails"])
    sent: list[int] = []

    def record(params: dict[str, Any], **_: object) -> None:
        sent.extend(int(entry["VisibilityTimeout"]) for entry in params["Entries"])

    app_env.client.meta.events.register("before-parameter-build.sqs.ChangeMessageVisibilityBatch", record)

    def fail(_: SqsMessage) -> None:
        raise RuntimeError("handler failed")

    summary = drain(app_env.client, queues.url, fail, replace(FAST, backoff_base_seconds=120))

    assert (summary.failed, sent) == (1, [120])  # receive 1: the base
    assert visible_count(app_env.client, queues.url) == 0
    assert queue_depth(app_env.client, queues.url).backlog == 1  # hidden, not lost


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
def test_a_dependency_down_runs_the_message_again_without_counting_an_attempt(
    app_env: AppUnderTest, make_queue: MakeQueue, fifo: bool
) -> None:
    """``DependencyUnavailable`` is not the message's failure: the message waits in the pass, out of
    its slot, and runs again after a growing pause (1 s, 2 s) with the same attempt, where a failure
    would count one (with maxReceiveCount 2: the DLQ after the second)."""
    queues = make_queue(fifo=fifo, max_receive_count=2)
    bodies = ["down", "o-1", "o-2"]
    send(app_env.client, queues.url, bodies, group_of={body: body for body in bodies} if fifo else None)
    runs: list[tuple[str, int]] = []

    def handler(message: SqsMessage) -> None:
        runs.append((message.body, message.receive_count))
        if message.body == "down" and runs.count(("down", 1)) <= 2:
            raise DependencyUnavailable("the payments API is down")

    options = replace(FAST, max_concurrency=1, backoff_base_seconds=1)
    summary = drain(app_env.client, queues.url, handler, options)

    context = f"runs {runs}, {summary}"
    assert [count for body, count in runs if body == "down"] == [1, 1, 1], context
    assert sorted(body for body, _ in runs if body != "down") == ["o-1", "o-2"], context
    assert (summary.succeeded, summary.failed, summary.unavailable) == (3, 0, 2), context
    assert drain_all(app_env.client, queues.dlq_url) == [], context
    assert queue_depth(app_env.client, queues.url).backlog == 0


def test_no_more_than_max_concurrency_handlers_run_at_once(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    send(app_env.client, queues.url, [f"m-{n:02d}" for n in range(40)])
    lock = threading.Lock()
    running = [0, 0]  # now, peak

    def handler(_: SqsMessage) -> None:
        with lock:
            running[0] += 1
            running[1] = max(running)
        time.sleep(0.05)
        with lock:
            running[0] -= 1

    summary = drain(app_env.client, queues.url, handler, replace(FAST, max_concurrency=4))

    assert summary.succeeded == 40
    assert running[1] == 4  # the bound, and reached: slots refill as handlers finish


def test_a_drain_costs_about_one_fifth_of_a_request_per_message(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    send(app_env.client, queues.url, [f"m-{n:03d}" for n in range(300)])
    # Counted on the wire, by botocore, not by the consumer's own summary.
    counts = [
        count_requests(app_env.client, operation)
        for operation in ("ReceiveMessage", "DeleteMessageBatch", "ChangeMessageVisibilityBatch")
    ]
    empty: list[int] = []

    def note_empty(parsed: dict[str, Any], **_: object) -> None:
        if not parsed.get("Messages"):
            empty.append(1)

    app_env.client.meta.events.register("after-call.sqs.ReceiveMessage", note_empty)
    recorder = Recorder()

    summary = drain(app_env.client, queues.url, recorder.success, replace(FAST, ack_linger_seconds=0.2))

    assert summary.deleted == 300
    requests = sum(sum(count.values()) for count in counts)
    context = f"{requests} SQS requests for 300 messages, {len(empty)} empty receives: {counts}, {summary}"
    # Busy: 30 receives and 30 deletes. Then each receive in flight when the queue ran dry comes back
    # empty, once: at most the bound of receives in flight, plus the one that proves the linger.
    assert requests - len(empty) <= 0.21 * 300, context
    assert len(empty) <= DrainOptions().max_receives_in_flight + 1, context
