"""The embedded emulator behaves like SQS where the app relies on it.

moto 5.2.5 differs in three places; local_dev/emulator.py patches each where moto starts.
Each check runs on the app's emulator (patched) and on a plain ``python -m moto.server``
in a child process (unpatched): the second proves the bug is moto's, and fails once a
moto release fixes it, which is the time to drop the patch.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.ops.local_dev.emulator import start_emulator

pytestmark = pytest.mark.slow


def client_for(url: str) -> SQSClient:
    return boto3.client(
        "sqs",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(max_pool_connections=50),
    )


@pytest.fixture(scope="module")
def patched_moto() -> Iterator[SQSClient]:
    emulator = start_emulator(port=0)
    try:
        yield client_for(emulator.url)
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def unpatched_moto() -> Iterator[SQSClient]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = client_for(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                client.list_queues()
                break
            except Exception:
                assert time.monotonic() < deadline, "moto's server did not start"
                time.sleep(0.2)
        yield client
    finally:
        server.kill()
        server.wait()


def first_after_a_batch_backoff(client: SQSClient) -> list[str]:
    """Receive a1..a3 of one group, back all three off by 1 s in one call, wait, receive again."""
    url = client.create_queue(
        QueueName=f"fifo-{uuid.uuid4().hex[:8]}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    entries = [{"Id": str(n), "MessageBody": f"a{n}", "MessageGroupId": "a"} for n in range(1, 6)]
    client.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
    first = client.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=30)["Messages"]
    assert [m["Body"] for m in first] == ["a1", "a2", "a3"]
    client.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 1}
            for n, m in enumerate(first)
        ],
    )
    time.sleep(1.5)
    again = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
    client.delete_queue(QueueUrl=url)
    return [m["Body"] for m in again.get("Messages", [])]


def test_a_fifo_group_backed_off_in_one_call_comes_back_from_its_first_message(
    patched_moto: SQSClient,
) -> None:
    assert first_after_a_batch_backoff(patched_moto)[:1] == ["a1"]  # as on AWS


def test_unpatched_moto_skips_the_groups_earlier_messages(unpatched_moto: SQSClient) -> None:
    assert first_after_a_batch_backoff(unpatched_moto) == ["a3", "a4", "a5"]


def messages_handed_out_twice(client: SQSClient, rounds: int = 3) -> int:
    """Receives at once from 16 threads; how many messages more than one of them got."""
    twice = 0
    for _ in range(rounds):
        url = client.create_queue(QueueName=f"busy-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        for start in range(0, 150, 10):
            client.send_message_batch(
                QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"m-{start + n}"} for n in range(10)]
            )

        with ThreadPoolExecutor(16) as pool:
            bodies = Counter(body for batch in pool.map(receive_ten, [(client, url)] * 16) for body in batch)
        twice += sum(count - 1 for count in bodies.values())
        client.delete_queue(QueueUrl=url)
        if twice:
            break
    return twice


def receive_ten(client_and_url: tuple[SQSClient, str]) -> list[str]:
    client, url = client_and_url
    response = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)
    return [m["Body"] for m in response.get("Messages", [])]


def test_concurrent_receives_never_hand_out_one_message_twice(patched_moto: SQSClient) -> None:
    assert messages_handed_out_twice(patched_moto) == 0


def test_unpatched_moto_hands_out_messages_twice_to_concurrent_receives(unpatched_moto: SQSClient) -> None:
    # A race: it shows in most rounds, so up to 20 rounds (stopping at the first) make it certain enough.
    assert messages_handed_out_twice(unpatched_moto, rounds=20) > 0


ELEVEN_ATTRIBUTES = {f"a{n}": {"DataType": "String", "StringValue": "v"} for n in range(11)}
# What SQS refuses a sender, and queues none of: (what, SendMessage's parameters, SQS's error code).
REFUSED_BY_SQS = [
    ("11 attributes", {"MessageAttributes": ELEVEN_ATTRIBUTES}, "InvalidParameterValue"),
    (
        "a reserved attribute name",
        {"MessageAttributes": {"AWS.trace": {"DataType": "String", "StringValue": "v"}}},
        "InvalidParameterValue",
    ),
    (
        "an attribute name with a '~'",
        {"MessageAttributes": {"a~b": {"DataType": "String", "StringValue": "v"}}},
        "InvalidParameterValue",
    ),
    ("a group ID with a space", {"MessageGroupId": "orders 42"}, "InvalidParameterValue"),
    ("a 129-character deduplication ID", {"MessageDeduplicationId": "d" * 129}, "InvalidParameterValue"),
    ("a body with U+FFFF", {"MessageBody": "bad \uffff"}, "InvalidMessageContents"),
]


def refusals(client: SQSClient) -> list[tuple[str, str | None, str | None, int]]:
    """Each send of ``REFUSED_BY_SQS`` alone, then in a batch with a good one: (what, its error code
    alone, its entry's code in the batch, the copies of it queued); None where it was not refused."""
    seen: list[tuple[str, str | None, str | None, int]] = []
    for what, parameters, _ in REFUSED_BY_SQS:
        url = client.create_queue(
            QueueName=f"refusals-{uuid.uuid4().hex[:8]}.fifo",
            Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
        )["QueueUrl"]
        send: dict[str, Any] = {"MessageBody": "bad", "MessageGroupId": "g", **parameters}
        try:
            client.send_message(QueueUrl=url, **send)
            alone = None
        except ClientError as error:
            alone = error.response["Error"]["Code"]
        good = {"Id": "good", "MessageBody": "good", "MessageGroupId": "g"}
        try:
            batch = client.send_message_batch(QueueUrl=url, Entries=[{"Id": "bad", **send}, good])
            failed = {f["Id"]: f for f in batch.get("Failed", [])}
            assert all(f["SenderFault"] for f in failed.values())
            entry = failed["bad"]["Code"] if "bad" in failed else None
        except ClientError as error:  # the whole batch refused, the good entry with it
            entry = f"the whole batch: {error.response['Error']['Code']}"
        queued = drain(client, url)
        client.delete_queue(QueueUrl=url)
        seen.append((what, alone, entry, queued.count(send["MessageBody"])))
    return seen


def drain(client: SQSClient, url: str) -> list[str]:
    bodies: list[str] = []
    while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(message["Body"])
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_the_emulator_refuses_a_send_as_sqs_does(patched_moto: SQSClient) -> None:
    assert refusals(patched_moto) == [(what, code, code, 0) for what, _, code in REFUSED_BY_SQS]


def test_unpatched_moto_queues_what_sqs_refuses(unpatched_moto: SQSClient) -> None:
    seen = refusals(unpatched_moto)
    assert [what for what, _, _, queued in seen if queued] == [what for what, _, _ in REFUSED_BY_SQS], seen
