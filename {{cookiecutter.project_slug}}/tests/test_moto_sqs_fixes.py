"""The embedded emulator's fixes for moto's SQS (local_dev/moto_sqs_fixes.py): races and per-message scans.

Each test fails on moto 5.2.5 without the fixes. They run on the emulator's own moto server, in this
process, whatever SQS_TEST_ENDPOINT_URL says.
"""

from __future__ import annotations

import sys
import threading
import types
import uuid
from collections import defaultdict
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs import models
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.ops.local_dev import moto_sqs_fixes
from {{ cookiecutter.package_name }}.ops.local_dev.emulator import start_emulator

pytestmark = pytest.mark.slow

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


def queue_of(client: SQSClient, count: int, *, groups: int = 0, **attributes: str) -> tuple[str, Any]:
    """``count`` messages m-0000, m-0001...; with ``groups``: FIFO, message n in group n % groups."""
    name = f"fix-{uuid.uuid4().hex[:8]}" + (".fifo" if groups else "")
    if groups:
        attributes = {**attributes, "FifoQueue": "true", "ContentBasedDeduplication": "true"}
    url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    for start in range(0, count, 10):
        entries = [
            {"Id": str(n), "MessageBody": f"m-{start + n:04d}"}
            | ({"MessageGroupId": f"g{(start + n) % groups}"} if groups else {})
            for n in range(min(10, count - start))
        ]
        client.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
    return url, models.sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[name]


@pytest.fixture
def thread_switches_often() -> Iterator[None]:
    """Let the interpreter switch threads at almost every step, so races show in a short run."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.parametrize("groups", [0, 4], ids=["standard", "fifo"])
def test_receivers_at_once_get_each_message_once_and_fifo_groups_in_order(
    moto_sqs: SQSClient, thread_switches_often: None, groups: int
) -> None:
    url, _ = queue_of(moto_sqs, 200, groups=groups, VisibilityTimeout="60")
    handled: list[str] = []
    lock = threading.Lock()
    endpoint = moto_sqs.meta.endpoint_url

    def receive_and_delete() -> None:
        client = boto3.client(
            "sqs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
        )
        while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            with lock:
                handled.extend(m["Body"] for m in messages)
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
            client.delete_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]

    receivers = [threading.Thread(target=receive_and_delete) for _ in range(8)]
    for receiver in receivers:
        receiver.start()
    for receiver in receivers:
        receiver.join()

    # Unpatched, two receives hand out one message, and a delete undoes another's.
    assert sorted(handled) == [f"m-{n:04d}" for n in range(200)]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = moto_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]  # type: ignore[arg-type]
    assert [attributes[name] for name in names] == ["0", "0"]  # type: ignore[literal-required]
    if groups:  # and unpatched, a second receive takes the next message of a group the first holds
        by_group: dict[int, list[str]] = defaultdict(list)
        for body in handled:
            by_group[int(body[2:]) % groups].append(body)
        assert {group: bodies for group, bodies in by_group.items() if bodies != sorted(bodies)} == {}


def test_a_waiting_receive_does_not_stop_a_send_from_reaching_it(moto_sqs: SQSClient) -> None:
    """The lock is never held through a long poll: the send goes through, and the poll returns it."""
    url, _ = queue_of(moto_sqs, 0)
    received: list[Any] = []
    poll = threading.Thread(
        target=lambda: received.extend(
            moto_sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])
        )
    )
    poll.start()
    threading.Event().wait(0.5)  # the poll is waiting by now
    moto_sqs.send_message(QueueUrl=url, MessageBody="late")
    poll.join()
    assert [m["Body"] for m in received] == ["late"]


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


def test_the_patches_refuse_another_moto_version_naming_both() -> None:
    with pytest.raises(moto_sqs_fixes.UnprovenMotoError) as refused:
        moto_sqs_fixes.check_moto("5.3.0", models)
    message = str(refused.value)
    assert "moto 5.3.0 is installed" in message
    assert f"proven on moto {moto_sqs_fixes.PROVEN_MOTO_VERSION} only" in message
    assert f"moto[server]=={moto_sqs_fixes.PROVEN_MOTO_VERSION}" in message


def test_the_patches_refuse_moto_whose_internals_moved() -> None:
    """The proven version string, but a backend without a call the patches replace."""
    moved = types.ModuleType("moved")
    moved.SQSBackend = type("SQSBackend", (), {})  # type: ignore[attr-defined]
    with pytest.raises(moto_sqs_fixes.UnprovenMotoError, match=r"internals .* \(missing: send_message, "):
        moto_sqs_fixes.check_moto(moto_sqs_fixes.PROVEN_MOTO_VERSION, moved)


def test_the_installed_moto_is_the_proven_one() -> None:
    moto_sqs_fixes.check_moto(version("moto"), models)
