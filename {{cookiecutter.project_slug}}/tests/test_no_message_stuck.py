"""However a handler ends, and however a pass ends, no message stays stuck and no thread stays behind.

Against the real endpoint over HTTP. A handler raising any ``BaseException`` fails its
message as an ``Exception`` does (``asyncio.CancelledError`` included), except
``KeyboardInterrupt`` and ``SystemExit``: those stop the pass, which gives back what it
holds, joins its threads, then raises them again.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import replace

import pytest
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.engine.consumer import Handler, SqsMessage, drain

from .conftest import AppUnderTest, MakeQueue, drain_all, queue_depth
from .test_consumer import FAST, send

# Drains: not the inner loop.
pytestmark = pytest.mark.slow


def new_threads(before: set[threading.Thread]) -> list[str]:
    """Threads started since ``before`` and still alive; the emulator's request threads excepted
    (they serve boto3's kept-alive connections, not the consumer)."""
    return [
        thread.name
        for thread in threading.enumerate()
        if thread not in before and "process_request_thread" not in thread.name
    ]


def invisible(client: SQSClient, url: str) -> int:
    attributes = client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def cancelling_handler(handled: list[str], lock: threading.Lock, *, run_async: bool) -> Handler:
    """Raises ``asyncio.CancelledError`` for about 10% of attempts (seeded), else records the body."""
    chance = random.Random(15)

    def attempt(message: SqsMessage) -> None:
        with lock:
            cancelled = chance.random() < 0.1
            if not cancelled:
                handled.append(message.body)
        if cancelled:
            raise asyncio.CancelledError

    async def async_handler(message: SqsMessage) -> None:
        await asyncio.sleep(0)
        attempt(message)

    return async_handler if run_async else attempt


@pytest.mark.parametrize("run_async", [True, False], ids=["async", "sync"])
def test_handlers_raising_cancelled_error_fail_their_messages_and_no_pass_leaves_anything_behind(
    app_env: AppUnderTest, make_queue: MakeQueue, run_async: bool
) -> None:
    queues = make_queue(max_receive_count=5, visibility_timeout=4)
    bodies = [f"m-{n:03d}" for n in range(200)]
    send(app_env.client, queues.url, bodies)
    handled: list[str] = []
    handler = cancelling_handler(handled, threading.Lock(), run_async=run_async)
    options = replace(FAST, visibility_timeout_seconds=4, wait_time_seconds=0)

    summaries = []
    for _ in range(8):
        before = set(threading.enumerate())
        summaries.append(drain(app_env.client, queues.url, handler, options))
        assert new_threads(before) == []
        # Backoff 0: whatever the pass held is deleted or visible again once it returns.
        assert invisible(app_env.client, queues.url) == 0
        if queue_depth(app_env.client, queues.url).backlog == 0:
            break

    dead_lettered = drain_all(app_env.client, queues.dlq_url)
    assert sorted(handled + dead_lettered) == bodies, summaries
    assert sum(s.failed for s in summaries) > 0  # cancellations happened, and counted as failures
    assert queue_depth(app_env.client, queues.url).backlog == 0


def raising_on(body: str, error: BaseException, *, run_async: bool, handled: list[str]) -> Handler:
    def attempt(message: SqsMessage) -> None:
        if message.body == body:
            raise error
        handled.append(message.body)

    async def async_handler(message: SqsMessage) -> None:
        await asyncio.sleep(0.01)
        attempt(message)

    return async_handler if run_async else attempt


@pytest.mark.parametrize(
    ("error", "run_async"),
    [(KeyboardInterrupt(), False), (KeyboardInterrupt(), True), (SystemExit(3), True)],
    ids=["keyboard-interrupt-sync", "keyboard-interrupt-async", "system-exit-async"],
)
def test_a_handlers_keyboard_interrupt_stops_the_pass_gives_back_its_messages_and_is_raised_again(
    app_env: AppUnderTest, make_queue: MakeQueue, error: BaseException, run_async: bool
) -> None:
    queues = make_queue(visibility_timeout=60)
    bodies = [f"m-{n:02d}" for n in range(40)]
    send(app_env.client, queues.url, bodies)
    handled: list[str] = []
    handler = raising_on("m-05", error, run_async=run_async, handled=handled)
    # A long visibility: a message the pass kept would stay hidden for a minute.
    options = replace(FAST, max_concurrency=4, visibility_timeout_seconds=60)

    before = set(threading.enumerate())
    with pytest.raises(type(error)) as raised:
        drain(app_env.client, queues.url, handler, options)

    assert raised.value is error
    assert new_threads(before) == []
    receivable_now = drain_all(app_env.client, queues.url)
    assert "m-05" in receivable_now
    assert sorted(handled + receivable_now) == bodies
    assert queue_depth(app_env.client, queues.url).backlog == 0
