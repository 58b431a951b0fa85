"""FIFO: only a message that keeps failing reaches the DLQ; its group goes on, in order.

A failed FIFO message is retried inside the pass while its group waits (heartbeated, so
SQS counts no receive), and moved to the DLQ by the consumer after ``maxReceiveCount``
attempts. Against the real endpoint over HTTP: the embedded emulator by default, or
LocalStack when ``SQS_TEST_ENDPOINT_URL`` points at it.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from dataclasses import replace

import pytest

from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage, drain

from .conftest import AppUnderTest, MakeQueue, drain_all, queue_depth
from .test_consumer import FAST, drain_until_empty, send

# Drains with backoffs: not the inner loop.
pytestmark = pytest.mark.slow


def test_a_poison_message_at_the_head_of_a_group_is_the_only_one_dead_lettered(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    # A 4 s visibility against 15 s of backoffs (1+2+4+8): the group must be heartbeated while it waits.
    queues = make_queue(fifo=True, max_receive_count=5, visibility_timeout=4)
    bodies = ["poison", *(f"m-{n:02d}" for n in range(49))]
    send(app_env.client, queues.url, bodies, group_of=dict.fromkeys(bodies, "g"))
    handled: list[str] = []
    attempts: list[int] = []

    def handler(message: SqsMessage) -> None:
        if message.body == "poison":
            attempts.append(message.receive_count)
            raise ValueError("cannot be handled")
        handled.append(message.body)

    options = replace(FAST, visibility_timeout_seconds=4, backoff_base_seconds=1)
    summary = drain(app_env.client, queues.url, handler, options)

    assert attempts == [1, 2, 3, 4, 5]
    assert handled == bodies[1:]  # each once, in order
    dead = app_env.client.receive_message(
        QueueUrl=queues.dlq_url,
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["All"],
        WaitTimeSeconds=1,
    ).get("Messages", [])
    assert [(m["Body"], m["Attributes"]["MessageGroupId"]) for m in dead] == [("poison", "g")]
    assert (summary.dead_lettered, summary.released, summary.failed) == (1, 0, 5)
    # The redrive policy read once (GetQueueAttributes, GetQueueUrl), then one SendMessage.
    assert summary.dead_letter_requests == 3
    assert queue_depth(app_env.client, queues.url).backlog == 0
    print(f"\nFIFO poison, 50 messages: {summary.sqs_requests / 50:.2f} requests per message ({summary})")


def test_transient_failures_over_four_groups_dead_letter_nothing_and_keep_each_groups_order(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(fifo=True, max_receive_count=5)
    groups = ["a", "b", "c", "d"]
    bodies = [f"{group}:{n:02d}" for n in range(50) for group in groups]
    send(app_env.client, queues.url, bodies, group_of={b: b.split(":")[0] for b in bodies})
    chance = random.Random(4)
    lock = threading.Lock()
    done: dict[str, list[int]] = defaultdict(list)
    failures = [0]

    def handler(message: SqsMessage) -> None:
        group, number = message.body.split(":")
        with lock:
            if chance.random() < 0.15:
                failures[0] += 1
                raise RuntimeError("transient")
            done[group].append(int(number))

    summaries = drain_until_empty(app_env.client, queues.url, handler, FAST, 4)

    assert {group: done[group] for group in groups} == {group: list(range(50)) for group in groups}
    assert failures[0] > 0
    assert drain_all(app_env.client, queues.dlq_url) == []
    assert sum(s.dead_lettered for s in summaries) == 0
    assert queue_depth(app_env.client, queues.url).backlog == 0
    requests = sum(s.sqs_requests for s in summaries)
    print(f"\nFIFO 4x50, {failures[0]} transient failures: {requests / 200:.2f} requests per message")
