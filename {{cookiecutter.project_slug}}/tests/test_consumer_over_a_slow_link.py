"""The drain across a slow link, against the real endpoint over HTTP through a delaying proxy.

- Deletes slower than the visibility timeout: the heartbeat keeps the handled messages
  hidden until SQS confirms their delete, so no other consumer gets them.
- Deletes that fall behind slow receiving down (backpressure), so messages do not pile up
  in hand.
- A long round trip: more receives and ack calls go out at once (Little's law).

Everything is observed on the wire (botocore's events on the real client), not taken from
the consumer's own summary.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from mypy_boto3_sqs import SQSClient

from benchmarks.latency_proxy import LatencyProxy
from {{ cookiecutter.package_name }}.engine.consumer import DrainOptions, DrainSummary, SqsMessage, drain

from .conftest import AppUnderTest, MakeQueue, Recorder, queue_depth
from .sqs_proxy import sqs_proxy
from .test_consumer import FAST, send

pytestmark = pytest.mark.slow


@dataclass
class Wire:
    """What a client sent and got back: messages in hand over time, and calls in flight at once."""

    received: int = 0
    deleted: int = 0
    peak_in_hand: int = 0
    in_flight: Counter[str] = field(default_factory=Counter)
    peak_in_flight: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, client: SQSClient) -> None:
        client.meta.events.register("before-call.sqs", self._sent)
        client.meta.events.register("after-call.sqs", self._answered)

    def _sent(self, model: Any, **_: Any) -> None:
        with self.lock:
            self.in_flight[model.name] += 1
            self.peak_in_flight[model.name] = max(self.peak_in_flight[model.name], self.in_flight[model.name])

    def _answered(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        with self.lock:
            self.in_flight[model.name] -= 1
            if model.name == "ReceiveMessage":
                self.received += len(parsed.get("Messages", []))
            elif model.name == "DeleteMessageBatch":
                self.deleted += len(parsed.get("Successful", []))
            self.peak_in_hand = max(self.peak_in_hand, self.received - self.deleted)


def client_via(url: str, region: str) -> SQSClient:
    return boto3.client(
        "sqs",
        endpoint_url=url,
        region_name=region,
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}, max_pool_connections=100),
    )


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_heartbeat_keeps_handled_messages_hidden_while_their_delete_is_slow(
    app_env: AppUnderTest, make_queue: MakeQueue, sqs_endpoint: str, kind: str
) -> None:
    visibility = 2
    queues = make_queue(visibility_timeout=visibility)
    bodies = [f"m-{n:02d}" for n in range(20)]
    send(app_env.client, queues.url, bodies)
    recorder = Recorder()

    def handle(message: SqsMessage) -> None:
        recorder.called(message)
        recorder.success(message)

    async def handle_async(message: SqsMessage) -> None:
        handle(message)

    options = DrainOptions(
        wait_time_seconds=1, max_concurrency=4, budget_seconds=60, visibility_timeout_seconds=visibility
    )
    summaries: list[DrainSummary] = []
    # Each delete takes longer than the visibility timeout to reach SQS.
    with sqs_proxy(sqs_endpoint, delay={"DeleteMessageBatch": visibility * 1.5}) as proxy:
        client = proxy.client(app_env.settings.region, attempts=3)
        first = threading.Thread(
            target=lambda: summaries.append(
                drain(client, queues.url, handle if kind == "sync" else handle_async, options)
            )
        )
        first.start()
        while len(recorder.calls) < len(bodies) and first.is_alive():
            time.sleep(0.05)
        # Meanwhile another consumer polls all along, as another instance would.
        stolen: list[str] = []
        while first.is_alive():
            stolen += [
                m["Body"]
                for m in app_env.client.receive_message(
                    QueueUrl=queues.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
            ]
        first.join()

    [summary] = summaries
    assert stolen == []
    assert sorted(recorder.succeeded) == bodies
    assert recorder.duplicates() == 0
    assert summary.deleted == 20
    assert summary.heartbeats > 0  # the deletes waited longer than the visibility timeout
    assert queue_depth(app_env.client, queues.url).backlog == 0


def test_receiving_slows_down_when_deletes_fall_behind(
    app_env: AppUnderTest, make_queue: MakeQueue, sqs_endpoint: str
) -> None:
    queues = make_queue(visibility_timeout=60)
    bodies = [f"m-{n:03d}" for n in range(150)]
    send(app_env.client, queues.url, bodies)
    recorder = Recorder()
    # One delete call at a time, and each slow: 20 deletes a second at most, far fewer than
    # the handlers (which do nothing) and two receives in flight could take.
    options = replace(FAST, max_concurrency=8, max_receives_in_flight=2, max_ack_calls_in_flight=1)
    wire = Wire()
    with sqs_proxy(sqs_endpoint, delay={"DeleteMessageBatch": 0.5}) as proxy:
        client = proxy.client(app_env.settings.region, attempts=3)
        wire.watch(client)
        summary = drain(client, queues.url, recorder.success, options)

    assert sorted(recorder.succeeded) == bodies
    assert summary.deleted == 150
    # In hand: 8 handling, 2 receives of 10, 10 waiting for the delete call and 10 in it,
    # plus one receive that left before the backlog showed. Without backpressure, all 150.
    assert wire.peak_in_hand <= 8 + 20 + 10 + 10 + 10, wire


def test_a_long_round_trip_puts_more_receives_and_deletes_in_flight(
    app_env: AppUnderTest, make_queue: MakeQueue, sqs_endpoint: str
) -> None:
    queues = make_queue(visibility_timeout=60)
    bodies = [f"m-{n:03d}" for n in range(200)]
    send(app_env.client, queues.url, bodies)
    recorder = Recorder()

    async def handle(message: SqsMessage) -> None:
        await asyncio.sleep(0.02)
        recorder.success(message)

    wire = Wire()
    # 200 ms round trip: one receive at a time would bring 50 messages a second, and
    # 16 handlers of 20 ms can take 800. Little's law wants several of each in flight.
    with LatencyProxy(sqs_endpoint, one_way_ms=100) as proxy:
        client = client_via(proxy.url, app_env.settings.region)
        wire.watch(client)
        summary = drain(client, queues.url, handle, replace(FAST, max_concurrency=16))

    assert sorted(recorder.succeeded) == bodies
    assert summary.deleted == 200
    assert wire.peak_in_flight["ReceiveMessage"] >= 3, wire
    assert wire.peak_in_flight["DeleteMessageBatch"] >= 2, wire
    assert queue_depth(app_env.client, queues.url).backlog == 0


def test_an_idle_queue_costs_one_receive_at_a_time(
    app_env: AppUnderTest, make_queue: MakeQueue, sqs_endpoint: str
) -> None:
    queues = make_queue()
    wire = Wire()
    with LatencyProxy(sqs_endpoint, one_way_ms=80) as proxy:
        client = client_via(proxy.url, app_env.settings.region)
        wire.watch(client)
        drain(client, queues.url, Recorder().success, replace(FAST, linger_seconds=3))

    assert wire.peak_in_flight["ReceiveMessage"] == 1, wire
