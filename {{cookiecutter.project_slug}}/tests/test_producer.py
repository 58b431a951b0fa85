"""The sender against a real SQS endpoint: batches by count and bytes, size checks, partial failures, FIFO."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pytest

from {{ cookiecutter.package_name }}.engine.producer import MessageRejected, OutgoingMessage, Sender

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

from .conftest import AppUnderTest, BatchEntryFaults, MakeQueue, count_requests, drain_all

pytestmark = pytest.mark.slow


def bodies(count: int) -> list[str]:
    return [f"m-{n:02d}" for n in range(count)]


def test_25_messages_take_3_send_message_batch_requests(app_env: AppUnderTest, make_queue: MakeQueue) -> None:
    queues = make_queue()
    requests = count_requests(app_env.client, "SendMessageBatch")

    result = Sender(app_env.client, queues.url).send_batch([OutgoingMessage(b) for b in bodies(25)])

    assert (result.sent, result.failed, result.requests) == (25, 0, 3)
    assert requests["SendMessageBatch"] == 3
    assert sorted(drain_all(app_env.client, queues.url)) == bodies(25)


def test_batches_are_split_by_bytes_as_well_as_by_count(app_env: AppUnderTest, make_queue: MakeQueue) -> None:
    queues = make_queue()
    requests = count_requests(app_env.client, "SendMessageBatch")
    big = [f"{n}-" + "x" * 60_000 for n in range(10)]  # four fit in 262,144 bytes, not five

    result = Sender(app_env.client, queues.url).send_batch([OutgoingMessage(b) for b in big])

    assert (result.sent, result.failed) == (10, 0)
    assert requests["SendMessageBatch"] == 3
    assert sorted(drain_all(app_env.client, queues.url)) == sorted(big)


def test_an_oversized_message_gets_a_clear_error_while_the_rest_are_sent(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    requests = count_requests(app_env.client, "SendMessageBatch")
    sender = Sender(app_env.client, queues.url, max_message_bytes=262_144)
    too_big = "x" * 262_145

    result = sender.send_batch(
        [OutgoingMessage("small-0"), OutgoingMessage(too_big), OutgoingMessage("small-2")]
    )

    assert result.sent == 2
    [failure] = result.failures
    assert (failure.index, failure.code, failure.sender_fault) == (1, "MessageTooLarge", True)
    assert failure.reason == "message is 262145 bytes; the limit is 262144 (SQS_MAX_MESSAGE_BYTES)"
    assert requests["SendMessageBatch"] == 1
    assert sorted(drain_all(app_env.client, queues.url)) == ["small-0", "small-2"]
    with pytest.raises(MessageRejected, match="262145 bytes"):
        sender.send(OutgoingMessage(too_big))


def test_entries_that_fail_in_part_are_retried(app_env: AppUnderTest, make_queue: MakeQueue) -> None:
    queues = make_queue()
    requests = count_requests(app_env.client, "SendMessageBatch")
    faults = BatchEntryFaults(
        app_env.client, "SendMessageBatch", lambda entry: entry["MessageBody"] in {"m-03", "m-17"}, times=2
    )
    try:
        result = Sender(app_env.client, queues.url).send_batch([OutgoingMessage(b) for b in bodies(25)])
    finally:
        faults.remove()

    assert faults.injected == ["m-03", "m-17"]
    assert (result.sent, result.failures) == (25, [])
    assert requests["SendMessageBatch"] == 3 + 2  # one retry for each batch that had a failure
    assert Counter(drain_all(app_env.client, queues.url)) == Counter(bodies(25))  # each exactly once


def faults_on(app_env: AppUnderTest, body: str, *, times: int, sender_fault: bool) -> BatchEntryFaults:
    code = "InvalidParameterValue" if sender_fault else "InternalError"
    return BatchEntryFaults(
        app_env.client,
        "SendMessageBatch",
        lambda entry: entry["MessageBody"] == body,
        times=times,
        sender_fault=sender_fault,
        code=code,
    )


def test_entries_that_fail_for_good_are_reported_and_never_dropped(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    requests = count_requests(app_env.client, "SendMessageBatch")
    faults = [
        faults_on(app_env, "m-05", times=1, sender_fault=False),
        faults_on(app_env, "m-07", times=1, sender_fault=True),
    ]
    try:
        # One attempt: a retryable failure is final too, and must be reported.
        result = Sender(app_env.client, queues.url, max_attempts=1).send_batch(
            [OutgoingMessage(b) for b in bodies(10)]
        )
    finally:
        for fault in faults:
            fault.remove()

    assert [(f.index, f.code, f.sender_fault) for f in result.failures] == [
        (5, "InternalError", False),
        (7, "InvalidParameterValue", True),
    ]
    assert (result.sent, requests["SendMessageBatch"]) == (8, 1)
    assert sorted(drain_all(app_env.client, queues.url)) == [
        b for b in bodies(10) if b not in {"m-05", "m-07"}
    ]


def test_an_entry_refused_as_the_senders_fault_is_not_retried(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue()
    requests = count_requests(app_env.client, "SendMessageBatch")
    faults = [
        faults_on(app_env, "m-05", times=1, sender_fault=False),
        faults_on(app_env, "m-07", times=99, sender_fault=True),
    ]
    try:
        result = Sender(app_env.client, queues.url, max_attempts=3).send_batch(
            [OutgoingMessage(b) for b in bodies(10)]
        )
    finally:
        for fault in faults:
            fault.remove()

    assert [(f.index, f.code) for f in result.failures] == [(7, "InvalidParameterValue")]
    assert faults[1].injected == ["m-07"]
    assert requests["SendMessageBatch"] == 2  # the retry carried m-05 alone
    assert Counter(drain_all(app_env.client, queues.url)) == Counter(b for b in bodies(10) if b != "m-07")


def test_fifo_messages_keep_their_group_and_get_a_deduplication_id(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(fifo=True, content_based_deduplication=False)
    sender = Sender(app_env.client, queues.url)

    result = sender.send_batch(
        [OutgoingMessage("first", group_id="g1"), OutgoingMessage("second", group_id="g2")]
    )
    sender.send(OutgoingMessage("third", group_id="g1", deduplication_id="once"))
    sender.send(OutgoingMessage("third again", group_id="g1", deduplication_id="once"))

    assert (result.sent, result.failures) == (2, [])
    received = app_env.client.receive_message(
        QueueUrl=queues.url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], WaitTimeSeconds=1
    )["Messages"]
    groups = {m["Body"]: m["Attributes"]["MessageGroupId"] for m in received}
    more = drain_all(app_env.client, queues.url)
    assert {**groups, **dict.fromkeys(more, "")}.keys() == {"first", "second", "third"}  # deduplicated
    assert (groups.get("first"), groups.get("second")) == ("g1", "g2")


@pytest.mark.parametrize("content_based_deduplication", [True, False], ids=["content-based", "explicit"])
def test_fifo_default_deduplication_never_merges_messages_that_differ_in_group_or_attributes(
    app_env: AppUnderTest, make_queue: MakeQueue, content_based_deduplication: bool
) -> None:
    queues = make_queue(fifo=True, content_based_deduplication=content_based_deduplication)
    sender = Sender(app_env.client, queues.url)
    tagged: dict[str, MessageAttributeValueTypeDef] = {"tenant": {"DataType": "String", "StringValue": "t1"}}

    sender.send(OutgoingMessage("same body", group_id="g1"))
    sender.send(OutgoingMessage("same body", group_id="g2"))
    result = sender.send_batch(
        [
            OutgoingMessage("same body", group_id="g1", attributes=tagged),
            OutgoingMessage("same body", group_id="g1"),
        ]
    )

    assert (result.sent, result.failures) == (2, [])  # the untagged g1 repeat is a retry: deduplicated
    received = []
    while batch := app_env.client.receive_message(
        QueueUrl=queues.url,
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
        WaitTimeSeconds=0,
    ).get("Messages", []):
        for message in batch:
            attributes = message.get("MessageAttributes", {})
            tenant = attributes["tenant"].get("StringValue") if "tenant" in attributes else None
            received.append((message["Attributes"]["MessageGroupId"], message["Body"], tenant))
            app_env.client.delete_message(QueueUrl=queues.url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(received, key=str) == sorted(
        [("g1", "same body", None), ("g2", "same body", None), ("g1", "same body", "t1")], key=str
    )


def test_fifo_refuses_a_message_without_group_or_with_a_delay_before_any_call(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(fifo=True)
    requests = count_requests(app_env.client, "SendMessage")
    sender = Sender(app_env.client, queues.url)

    with pytest.raises(MessageRejected, match="group"):
        sender.send(OutgoingMessage("no group"))
    with pytest.raises(MessageRejected, match="delay"):
        sender.send(OutgoingMessage("delayed", group_id="g", delay_seconds=5))
    assert requests["SendMessage"] == 0
