"""Payloads past the queue's limit through S3 (engine/large_payloads.py), interoperating with AWS's own
``amazon-sqs-extended-client`` (PyPI) over the emulator's SQS and S3: no one here wrote either side's
reader or writer of the other. 2 MiB is twice the largest message SQS takes at all."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from {{ cookiecutter.package_name }}.engine.aws_session import reset_clients
from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage
from {{ cookiecutter.package_name }}.engine.large_payloads import SIZE_ATTRIBUTE, S3Pointer
from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue
from {{ cookiecutter.package_name }}.engine.settings import Settings

from .conftest import AppUnderTest, BatchEntryFaults, count_requests, drain_all, http_post, send_params

pytestmark = pytest.mark.slow  # drains, and runs the extended client in processes of its own

TWO_MIB = 2 * 1024 * 1024
REGION = "{{ cookiecutter.aws_region }}"


@pytest.fixture
def bucket(app_env: AppUnderTest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A bucket on the emulator's S3, named in SQS_LARGE_PAYLOAD_BUCKET."""
    name = f"payloads-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    monkeypatch.setenv("SQS_LARGE_PAYLOAD_BUCKET", name)
    reset_clients()
    yield name
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)
    reset_clients()


def peer(*args: str) -> Any:
    """AWS's extended client in a process of its own (tests/extended_client_peer.py), on the same emulator."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.extended_client_peer", *args],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "AWS_REGION": REGION},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def peer_sends(app_env: AppUnderTest, bucket: str, size: int) -> dict[str, Any]:
    group = ["g"] if app_env.queues.input_url.endswith(".fifo") else []
    sent: dict[str, Any] = peer("send", app_env.queues.input_url, bucket, str(size), *group)
    return sent


def sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def objects(bucket: str) -> list[str]:
    return [
        o["Key"]
        for o in boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=bucket).get("Contents", [])
    ]


def payload(size: int) -> str:
    """A JSON document of ``size`` bytes with two-byte characters, so that bytes and characters differ."""
    head = json.dumps({"id": "big", "blob": ""}, ensure_ascii=False)
    body = json.dumps({"id": "big", "blob": "ë" * ((size - len(head.encode())) // 2)}, ensure_ascii=False)
    return body + " " * (size - len(body.encode()))


def drain_once(handler: Any) -> Any:
    return drain_input_queue(Settings.from_env(), handler=handler)


def test_a_2_mib_message_sent_by_the_extended_client_reaches_the_handler_whole_then_its_object_goes(
    app_env: AppUnderTest, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SQS_LARGE_PAYLOAD_DELETE", "true")
    sent = peer_sends(app_env, bucket, TWO_MIB)
    [key] = objects(bucket)
    handled: list[SqsMessage] = []

    summary = drain_once(handled.append)

    [message] = handled
    assert (sha256(message.body), len(message.body.encode())) == (sent["sha256"], TWO_MIB)
    # The extended client's own attributes pass; its reserved one does not (as the client does).
    assert set(message.message_attributes) == {"kind"}
    assert summary.deleted == 1
    assert key not in objects(bucket)


def test_the_object_stays_without_the_delete_setting_and_until_sqs_confirms_the_delete(
    app_env: AppUnderTest, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer_sends(app_env, bucket, 300_000)
    drain_once(lambda _: None)
    assert len(objects(bucket)) == 1  # SQS_LARGE_PAYLOAD_DELETE unset: kept

    monkeypatch.setenv("SQS_LARGE_PAYLOAD_DELETE", "true")
    peer_sends(app_env, bucket, 300_001)
    second = objects(bucket)
    # Beside it a small message, so that the large one's delete is one entry of a batch of two.
    fifo = app_env.queues.input_url.endswith(".fifo")
    app_env.client.send_message(
        QueueUrl=app_env.queues.input_url, MessageBody="small", **({"MessageGroupId": "h"} if fifo else {})
    )
    large: set[str] = set()

    def handler(message: SqsMessage) -> None:
        if len(message.body) > 1000:
            large.add(message.receipt_handle)

    # SQS refuses the handled large message's delete for good: the object must outlive it (it comes back).
    # A standard queue gives up on a refusal at once; FIFO retries any, GROUP_DELETE_ATTEMPTS in all (~18 s).
    from {{ cookiecutter.package_name }}.engine.aws_session import sqs_client
    from {{ cookiecutter.package_name }}.engine.consumer.acknowledging import GROUP_DELETE_ATTEMPTS

    faults = BatchEntryFaults(
        sqs_client(Settings.from_env()),
        "DeleteMessageBatch",
        lambda entry: entry["ReceiptHandle"] in large,
        times=GROUP_DELETE_ATTEMPTS if fifo else 1,
        sender_fault=True,
        code="ReceiptHandleIsInvalid",
        whole_calls=True,  # its delete may go alone in its call
    )
    try:
        summary = drain_once(handler)
    finally:
        faults.remove()
    assert (summary.deleted, summary.delete_failed) == (1, 1)
    assert sorted(objects(bucket)) == sorted(second)


def test_a_message_that_keeps_failing_is_dead_lettered_as_its_pointer_and_its_object_stays(
    app_env: AppUnderTest, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SQS_LARGE_PAYLOAD_DELETE", "true")
    peer_sends(app_env, bucket, TWO_MIB)
    [key] = objects(bucket)

    def fails(message: SqsMessage) -> None:
        assert len(message.body.encode()) == TWO_MIB
        raise RuntimeError("poison")

    for _ in range(app_env.settings.max_receive_count + 1):
        drain_once(fails)

    # In the DLQ as it came (a pointer, on FIFO moved there by the consumer): the object is what it points to.
    [dead] = drain_all(app_env.client, app_env.queues.dlq_url)
    assert S3Pointer.from_body(dead, "dlq") == S3Pointer(bucket, key)
    assert objects(bucket) == [key]


def test_a_pointer_to_another_bucket_fails_like_an_invalid_body(
    app_env: AppUnderTest, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    fifo = app_env.queues.input_url.endswith(".fifo")
    app_env.client.send_message(
        QueueUrl=app_env.queues.input_url,
        MessageBody=S3Pointer("someone-elses-bucket", "k").to_body(),
        MessageAttributes={SIZE_ATTRIBUTE: {"DataType": "Number", "StringValue": "5"}},
        **({"MessageGroupId": "g"} if fifo else {}),
    )
    handled: list[SqsMessage] = []
    summary = drain_once(handled.append)
    assert handled == []
    assert summary.failed >= 1
    assert "not to SQS_LARGE_PAYLOAD_BUCKET" in caplog.text


def test_without_the_bucket_setting_the_pointer_reaches_the_handler_as_before(app_env: AppUnderTest) -> None:
    bucket = f"payloads-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    peer_sends(app_env, bucket, 300_000)
    handled: list[SqsMessage] = []
    drain_once(handled.append)
    [message] = handled
    assert S3Pointer.from_body(message.body, message.message_id).bucket == bucket
    assert SIZE_ATTRIBUTE in message.message_attributes


def test_a_2_mib_body_sent_through_the_http_function_is_read_back_whole_by_the_extended_client(
    app_env: AppUnderTest, bucket: str, functions: dict[str, Any]
) -> None:
    body = payload(TWO_MIB)
    client = reset_and_count()
    response = functions["send_message"](
        http_post("messages", body.encode(), send_params(app_env.queues.output_url))
    )
    assert response.status_code == 202, response.get_body()
    assert client["PutObject"] == 1

    [message] = peer("receive", app_env.queues.output_url, bucket)
    assert (message["sha256"], message["bytes"]) == (sha256(body), TWO_MIB)
    # The extended client deleted the object with the message (delete_payload_from_s3).
    assert objects(bucket) == []


def test_a_batch_offloads_only_its_large_items_and_a_small_one_stays_inline(
    app_env: AppUnderTest, bucket: str, functions: dict[str, Any]
) -> None:
    items = [{"id": "small"}, {"id": "large", "blob": "x" * (app_env.settings.max_message_bytes + 10)}]
    response = functions["send_message_batch"](
        http_post("messages/batch", json.dumps(items).encode(), send_params(app_env.queues.output_url))
    )
    assert response.status_code == 200, response.get_body()
    assert len(objects(bucket)) == 1
    received = peer("receive", app_env.queues.output_url, bucket)
    received += peer("receive", app_env.queues.output_url, bucket)
    large = json.dumps(items[1])
    assert sorted(m["sha256"] for m in received) == sorted([sha256(json.dumps(items[0])), sha256(large)])


def s3_fails(operation: str) -> Callable[[], None]:
    """The app's S3 client answers ``operation`` as S3 does when it fails (503 SlowDown, after botocore's
    retries), unsent, at botocore's ``before-call``; returns the undo."""
    from botocore.awsrequest import AWSResponse

    from {{ cookiecutter.package_name }}.engine.aws_session import s3_client

    events = s3_client(Settings.from_env()).meta.events
    failure = {
        "Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
        "ResponseMetadata": {"HTTPStatusCode": 503},
    }

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("", 503, {}, None), failure  # type: ignore[arg-type]

    name, unique_id = f"before-call.s3.{operation}", f"s3-fails-{operation}"
    events.register(name, answer, unique_id=unique_id)
    return lambda: events.unregister(name, unique_id=unique_id)


def test_a_payload_s3_did_not_store_is_a_503_to_retry_later_and_is_not_sent(
    app_env: AppUnderTest, bucket: str, functions: dict[str, Any]
) -> None:
    params = send_params(app_env.queues.output_url)
    small, large = {"id": "small"}, {"id": "large", "blob": "x" * app_env.settings.max_message_bytes}
    undo = s3_fails("PutObject")
    try:
        one = functions["send_message"](http_post("messages", json.dumps(large).encode(), params))
        some = functions["send_message_batch"](
            http_post("messages/batch", json.dumps([small, large]).encode(), params)
        )
        none = functions["send_message_batch"](
            http_post("messages/batch", json.dumps([large]).encode(), params)
        )
    finally:
        undo()

    # Our storage failed, not the caller's request: a retry may get past it (docs/sending.md).
    assert (one.status_code, one.headers.get("Retry-After")) == (503, "5")
    assert json.loads(one.get_body())["code"] == "PayloadNotStored"
    assert json.loads(one.get_body())["retryable"] is True
    assert some.status_code == 207
    [failure] = json.loads(some.get_body())["failures"]
    assert failure == {"index": 1, "code": "PayloadNotStored", "retryable": True}
    assert (none.status_code, none.headers.get("Retry-After")) == (503, "5")
    assert drain_all(app_env.client, app_env.queues.output_url) == [json.dumps(small)]
    assert objects(bucket) == []


_counts: dict[str, int] = {}


def reset_and_count() -> dict[str, int]:
    """Counts the S3 requests the app's S3 client sends from now on."""
    from {{ cookiecutter.package_name }}.engine.aws_session import s3_client

    _counts.clear()
    lock = threading.Lock()

    def count(model: Any, **_: Any) -> None:
        with lock:
            _counts[model.name] = _counts.get(model.name, 0) + 1

    s3_client(Settings.from_env()).meta.events.register("before-send.s3", lambda **kw: None)
    s3_client(Settings.from_env()).meta.events.register("before-call.s3", count)
    return _counts


def test_request_cost_of_one_large_message_both_ways(
    app_env: AppUnderTest, bucket: str, functions: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One PutObject and one SendMessage to send; one GetObject and one DeleteObjects to drain (beside
    the pass's receive and delete batches). Printed as a figure, as the issue asks."""
    monkeypatch.setenv("SQS_LARGE_PAYLOAD_DELETE", "true")
    monkeypatch.setenv("SQS_OUTPUT_QUEUE", app_env.queues.input_url)
    s3_calls = reset_and_count()
    from {{ cookiecutter.package_name }}.engine.aws_session import sqs_client

    sends = count_requests(sqs_client(Settings.from_env()), "SendMessage")
    response = functions["send_message"](
        http_post("messages", payload(TWO_MIB).encode(), send_params(app_env.queues.input_url))
    )
    assert response.status_code == 202
    assert (s3_calls.get("PutObject"), sends["SendMessage"]) == (1, 1)
    summary = drain_once(lambda _: None)
    assert (s3_calls.get("GetObject"), s3_calls.get("DeleteObjects")) == (1, 1)
    print(
        f"large message: send = 1 PutObject + 1 SendMessage; drain = 1 GetObject + 1 DeleteObjects + "
        f"{summary.sqs_requests} SQS requests for the pass (receives, deletes)"
    )
