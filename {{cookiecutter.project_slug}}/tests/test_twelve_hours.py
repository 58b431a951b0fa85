"""No visibility change reaches past SQS's 12 hours from a message's receive; a message that
would goes back to SQS cleanly first.

SQS refuses a visibility change (a backoff, a heartbeat, a release) that reaches past 12 h
from the receive. The drain ends each message's hold ``DrainOptions.hold_limit_seconds`` after
its receive went out: SQS's 12 h less a margin. These tests give the hold a few seconds (the
same arithmetic, without a clock to move) and record every request on the wire, at botocore's
``before-parameter-build``: none reaches past its message's receive plus the hold; a FIFO group
midway through its retries, and a message not started yet, go back to SQS before it ends.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.engine.consumer import SQS_MAX_VISIBILITY_SECONDS, DrainOptions, SqsMessage, drain

from .conftest import AppUnderTest, MakeQueue, drain_all, queue_depth
from .test_consumer import FAST, send

pytestmark = pytest.mark.slow

HOLD = 12  # seconds, for 12 hours
# How long a request may take, once decided, to reach botocore's hook (threads, batching).
LATENCY = 0.5


class Wire:
    """When each message's receive went out, and each visibility request asked of SQS."""

    def __init__(self, client: SQSClient) -> None:
        self.received_at: dict[str, float] = {}  # by receipt handle
        self.requests: list[tuple[str, float, int]] = []  # receipt handle, sent at, seconds
        self.lock = threading.Lock()
        client.meta.events.register("before-parameter-build.sqs.ReceiveMessage", self._receiving)
        client.meta.events.register("after-call.sqs.ReceiveMessage", self._received)
        client.meta.events.register("before-parameter-build.sqs.ChangeMessageVisibilityBatch", self._changing)

    def _receiving(self, context: dict[str, Any], **_: object) -> None:
        context["sent_at"] = time.monotonic()

    def _received(self, parsed: dict[str, Any], context: dict[str, Any], **_: object) -> None:
        with self.lock:
            for message in parsed.get("Messages", []):
                self.received_at[message["ReceiptHandle"]] = context["sent_at"]

    def _changing(self, params: dict[str, Any], **_: object) -> None:
        now = time.monotonic()
        with self.lock:
            self.requests += [
                (e["ReceiptHandle"], now, int(e["VisibilityTimeout"])) for e in params["Entries"]
            ]

    def past_the_hold(self) -> list[tuple[float, int, float]]:
        """Requests that reach past their message's receive plus ``HOLD``: (sent at, seconds,
        how far past), times from the receive."""
        with self.lock:
            return [
                (round(sent - self.received_at[receipt], 2), seconds, round(past, 2))
                for receipt, sent, seconds in self.requests
                if (past := sent + seconds - (self.received_at[receipt] + HOLD)) > LATENCY
            ]

    def asked(self) -> list[tuple[float, int]]:
        with self.lock:
            return [(round(sent - self.received_at[r], 1), seconds) for r, sent, seconds in self.requests]


def test_the_hold_is_sqs_twelve_hours_less_a_margin() -> None:
    assert SQS_MAX_VISIBILITY_SECONDS == 12 * 60 * 60  # SQS's limit, as its API reference gives it
    assert 0 < SQS_MAX_VISIBILITY_SECONDS - DrainOptions().hold_limit_seconds <= 600


def test_a_fifo_group_retrying_goes_back_before_its_hold_ends(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(fifo=True, max_receive_count=10, visibility_timeout=4)
    send(app_env.client, queues.url, ["poison", "g-1"], group_of={"poison": "g", "g-1": "g"})
    wire = Wire(app_env.client)
    attempts: list[float] = []

    def handler(message: SqsMessage) -> None:
        attempts.append(time.monotonic())
        raise ValueError("cannot be handled")

    # Attempts at about 0, 2 and 6 s; the next, at 14 s, would be past the hold: it goes back.
    options = replace(FAST, visibility_timeout_seconds=4, backoff_base_seconds=2, hold_limit_seconds=HOLD)
    summary = drain(app_env.client, queues.url, handler, options)

    context = f"asked {wire.asked()}, {summary}"
    assert wire.past_the_hold() == [], context
    assert len(attempts) == 3, context
    assert summary.released == 1, context  # g-1, behind the poison
    assert queue_depth(app_env.client, queues.url).backlog == 2, context  # both back on the queue
    assert drain_all(app_env.client, queues.dlq_url) == []


def test_heartbeats_stop_at_the_hold_and_a_message_not_started_goes_back(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    visibility = 8  # the first heartbeat, after 4 s, would reach past the hold: it is cut
    queues = make_queue(visibility_timeout=visibility)
    send(app_env.client, queues.url, ["slow", "waiting"])
    wire = Wire(app_env.client)
    handled: list[tuple[str, int]] = []

    def handler(message: SqsMessage) -> None:
        handled.append((message.body, message.receive_count))
        if message.body == "slow":
            time.sleep(HOLD - 3)  # done within its hold (its heartbeats end it a second or two early)

    # One slot: "waiting" comes with "slow" and waits for the slot until less than a visibility
    # timeout of its hold is left: it goes back unstarted, for this pass or the next.
    options = replace(
        FAST,
        max_concurrency=1,
        visibility_timeout_seconds=visibility,
        hold_limit_seconds=HOLD,
        wait_time_seconds=1,
    )
    first = drain(app_env.client, queues.url, handler, options)
    second = drain(app_env.client, queues.url, handler, options)

    context = f"handled {handled}, asked {wire.asked()}, {first}, {second}"
    assert wire.past_the_hold() == [], context
    assert any(0 < seconds < visibility for _, seconds in wire.asked()), context  # heartbeats cut
    assert first.released == 1, context  # "waiting", unstarted
    assert handled == [("slow", 1), ("waiting", 2)], context
    assert queue_depth(app_env.client, queues.url).backlog == 0
