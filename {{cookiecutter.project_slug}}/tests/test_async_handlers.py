"""``async def`` handlers: run on the drain's own event loop, never lost, never taken as done early.

Same slots, failures, DLQ, FIFO order (with a real backoff) and heartbeat as sync handlers,
against the real endpoint over HTTP.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import replace

import pytest

from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage, drain

from .conftest import AppUnderTest, MakeQueue, Recorder, drain_all, queue_depth
from .test_consumer import FAST, drain_until_empty, send

pytestmark = pytest.mark.slow


def test_async_handlers_run_concurrently_on_the_drains_own_loop_and_every_message_is_done(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    bodies = [f"m-{n:02d}" for n in range(60)]
    send(app_env.client, queues.url, bodies)
    recorder = Recorder()
    loops: set[int] = set()
    threads: set[str] = set()
    running = [0, 0]  # now, peak

    async def handler(message: SqsMessage) -> None:
        loops.add(id(asyncio.get_running_loop()))
        threads.add(threading.current_thread().name)
        running[0] += 1
        running[1] = max(running)
        await asyncio.sleep(0.05)  # yields: the other slots run meanwhile
        running[0] -= 1
        recorder.success(message)

    summary = drain(app_env.client, queues.url, handler, replace(FAST, max_concurrency=8))

    assert sorted(recorder.succeeded) == bodies  # each body ran to its end
    assert summary.deleted == 60
    assert running[1] == 8  # the same bound as sync handlers, and reached
    assert len(loops) == 1
    assert len(threads) == 1
    assert threading.current_thread().name not in threads
    assert queue_depth(app_env.client, queues.url).backlog == 0


def test_a_failing_async_handler_sends_its_message_to_the_dlq_while_the_rest_flow(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(max_receive_count=3)
    good = [f"good-{n:02d}" for n in range(20)]
    send(app_env.client, queues.url, ["poison", *good])
    recorder = Recorder()

    async def handler(message: SqsMessage) -> None:
        recorder.called(message)
        await asyncio.sleep(0)
        if message.body == "poison":
            raise ValueError("cannot be handled")
        recorder.success(message)

    quick = replace(FAST, wait_time_seconds=0)
    first = drain(app_env.client, queues.url, handler, quick)
    drain_until_empty(app_env.client, queues.url, handler, quick)

    assert sorted(recorder.succeeded) == good
    assert first.deleted == 20  # the poison message blocks nobody
    assert [count for body, count in recorder.calls if body == "poison"] == [1, 2, 3]
    assert drain_all(app_env.client, queues.dlq_url) == ["poison"]


def test_a_plain_function_that_returns_an_awaitable_is_done_only_when_it_completes(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(max_receive_count=5)
    bodies = [f"m-{n:02d}" for n in range(20)]
    send(app_env.client, queues.url, [*bodies, "fails"])
    recorder = Recorder()

    async def work(message: SqsMessage) -> None:
        await asyncio.sleep(0.02)
        if message.body == "fails":
            raise RuntimeError("fails after its first await")
        recorder.success(message)

    def handler(message: SqsMessage) -> Awaitable[None]:  # e.g. a lambda or a partial around async code
        return work(message)

    summary = drain(app_env.client, queues.url, handler, replace(FAST, backoff_base_seconds=60))

    assert sorted(recorder.succeeded) == bodies
    assert (summary.succeeded, summary.failed, summary.deleted) == (20, 1, 20)
    # The failure waits for its backoff, not deleted.
    assert queue_depth(app_env.client, queues.url).backlog == 1


def test_async_handlers_keep_fifo_order_under_failures_with_a_real_backoff(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(fifo=True, max_receive_count=10)
    groups = ["a", "b", "c"]
    bodies = [f"{group}:{n:02d}" for n in range(8) for group in groups]
    send(app_env.client, queues.url, bodies, group_of={b: b.split(":")[0] for b in bodies})
    done: dict[str, list[int]] = defaultdict(list)
    running: set[str] = set()
    overlaps: list[str] = []
    seen: set[str] = set()

    async def handler(message: SqsMessage) -> None:
        group, number = message.body.split(":")
        if group in running:
            overlaps.append(message.body)
        running.add(group)
        first_try = message.body not in seen
        seen.add(message.body)
        try:
            await asyncio.sleep(0.01)
            if int(number) % 3 == 1 and first_try:
                raise RuntimeError("fails on its first try")
            done[group].append(int(number))
        finally:
            running.discard(group)

    # A failed message and the rest of its group come back after 1 s, as in production.
    options = replace(FAST, backoff_base_seconds=1)
    summaries = drain_until_empty(app_env.client, queues.url, handler, options, passes=15)

    assert {group: done[group] for group in groups} == {group: list(range(8)) for group in groups}, summaries
    assert overlaps == []
    assert sum(s.failed for s in summaries) == 3 * len(groups)
    assert drain_all(app_env.client, queues.dlq_url) == []
