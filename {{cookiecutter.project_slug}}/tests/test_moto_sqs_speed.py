"""The embedded emulator's fix for moto's per-message queue scans (local_dev/moto_sqs_speed.py).

Both tests run on the emulator's own moto server, in this process, whatever SQS_TEST_ENDPOINT_URL says.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs import models
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.local_dev.emulator import start_emulator

REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_sqs() -> Iterator[SQSClient]:
    emulator = start_emulator(port=0)
    try:
        yield boto3.client(
            "sqs",
            endpoint_url=emulator.url,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
    finally:
        emulator.stop()


def queue_of(client: SQSClient, count: int, **attributes: str) -> tuple[str, Any]:
    name = f"speed-{uuid.uuid4().hex[:8]}"
    url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    for start in range(0, count, 10):
        entries = [{"Id": str(n), "MessageBody": f"m-{start + n}"} for n in range(min(10, count - start))]
        client.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
    return url, models.sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[name]


def test_a_receive_computes_no_queue_attributes_per_message(
    moto_sqs: SQSClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = queue_of(moto_sqs, 50)
    computed: list[str] = []
    every_attribute = models.Queue.attributes

    def counted(queue: Any) -> Any:
        computed.append(queue.name)
        return every_attribute.fget(queue)  # type: ignore[attr-defined]

    monkeypatch.setattr(models.Queue, "attributes", property(counted))

    received = moto_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]

    assert len(received) == 10
    # Unpatched moto computes them (and scans the queue) for each of the 10 messages.
    assert computed == []


def test_a_message_past_its_retention_period_is_still_never_delivered(moto_sqs: SQSClient) -> None:
    url, queue = queue_of(moto_sqs, 2, MessageRetentionPeriod="60")
    # The expired one last: moto stops a receive at the first expired message it meets.
    kept, expired = sorted(queue._messages, key=lambda m: m.body)
    expired.sent_timestamp -= 61_000  # sent 61 s earlier than it was: past the 60 s retention
    kept.sent_timestamp -= 59_000

    received = moto_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)

    assert [m["Body"] for m in received.get("Messages", [])] == [kept.body]
