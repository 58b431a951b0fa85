"""Operations on the queues, for the ops CLI: queue statistics and DLQ redrive."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..engine.consumer import SqsMessage
from ..engine.producer import OutgoingMessage, Sender
from ..engine.queues import SQS_BATCH_LIMIT, is_fifo, queue_arn, queue_depth, queue_name

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageAttributeValueTypeDef

Progress = Callable[[str], None]

# How far back to look for the age metric; SQS publishes it every minute, a few minutes late.
AGE_METRIC_LOOKBACK = timedelta(minutes=15)
MOVE_TASK_DONE = ("COMPLETED", "CANCELLED", "FAILED")


@dataclass(frozen=True)
class QueueStats:
    name: str
    url: str
    visible: int
    in_flight: int
    delayed: int
    oldest_message_age_seconds: float | None
    age_source: str


def queue_stats(sqs: SQSClient, cloudwatch: CloudWatchClient, url: str) -> QueueStats:
    """Depth and in-flight count from SQS; the age of the oldest message from CloudWatch.

    SQS has no API for that age: receiving messages to look would count as a receive
    and push them towards the DLQ. So it comes from the ``ApproximateAgeOfOldestMessage``
    metric, or is None with the reason in ``age_source``.
    """
    depth = queue_depth(sqs, url)
    age, source = _oldest_message_age(cloudwatch, queue_name(url))
    return QueueStats(
        name=queue_name(url),
        url=url,
        visible=depth.visible,
        in_flight=depth.in_flight,
        delayed=depth.delayed,
        oldest_message_age_seconds=age,
        age_source=source,
    )


def _oldest_message_age(cloudwatch: CloudWatchClient, name: str) -> tuple[float | None, str]:
    from botocore.exceptions import BotoCoreError, ClientError

    now = datetime.now(UTC)
    try:
        result = cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "age",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SQS",
                            "MetricName": "ApproximateAgeOfOldestMessage",
                            "Dimensions": [{"Name": "QueueName", "Value": name}],
                        },
                        "Period": 60,
                        "Stat": "Maximum",
                    },
                }
            ],
            StartTime=now - AGE_METRIC_LOOKBACK,
            EndTime=now + timedelta(minutes=1),
            ScanBy="TimestampDescending",
        )["MetricDataResults"]
    except (BotoCoreError, ClientError) as error:
        return None, f"unavailable: {error}"
    values = result[0].get("Values", []) if result else []
    if not values:
        return None, "cloudwatch: no data in the last 15 minutes"
    return float(values[0]), "cloudwatch ApproximateAgeOfOldestMessage, latest minute"


@dataclass
class RedriveResult:
    method: str
    moved: int = 0
    failed: int = 0
    delete_failed: int = 0
    failures: list[str] = field(default_factory=list)
    status: str = "COMPLETED"
    fallback_reason: str = ""
    duration_seconds: float = 0.0


def redrive(
    sqs: SQSClient,
    dlq_url: str,
    target_url: str,
    *,
    method: str = "auto",
    max_messages: int | None = None,
    max_message_bytes: int = 262_144,
    progress: Progress = lambda _: None,
    probe: SQSClient | None = None,
) -> RedriveResult:
    """Move messages from ``dlq_url`` back to ``target_url``; nothing is lost on the way.

    ``method``: ``move-task`` (SQS's own StartMessageMoveTask), ``loop`` (receive, send,
    then delete), or ``auto``: the move task where the endpoint has it, else the loop.
    A count limit needs the loop: a move task moves everything. ``probe``, a client
    without retries, starts the move task under ``auto``: an endpoint without move
    tasks answers with an error that botocore would otherwise retry.
    """
    from botocore.exceptions import ClientError

    def by_loop() -> RedriveResult:
        return _redrive_by_loop(
            sqs,
            dlq_url,
            target_url,
            max_messages=max_messages,
            max_message_bytes=max_message_bytes,
            progress=progress,
        )

    started = time.monotonic()
    if method == "auto" and max_messages is None:
        try:
            result = _redrive_by_move_task(sqs, dlq_url, target_url, progress, starter=probe or sqs)
        except ClientError as error:
            progress(f"StartMessageMoveTask is not available here ({error}); using receive/send/delete")
            result = by_loop()
            result.fallback_reason = str(error)
    elif method == "move-task":
        result = _redrive_by_move_task(sqs, dlq_url, target_url, progress)
    else:
        result = by_loop()
    result.duration_seconds = round(time.monotonic() - started, 3)
    return result


def _redrive_by_move_task(
    sqs: SQSClient, dlq_url: str, target_url: str, progress: Progress, *, starter: SQSClient | None = None
) -> RedriveResult:
    dlq_arn = queue_arn(sqs, dlq_url)
    (starter or sqs).start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(sqs, target_url))
    while True:
        [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1)["Results"]
        moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        progress(
            f"move task {task['Status']}: {moved} of {task.get('ApproximateNumberOfMessagesToMove', '?')}"
        )
        if task["Status"] in MOVE_TASK_DONE:
            failures = [task["FailureReason"]] if task.get("FailureReason") else []
            return RedriveResult("move-task", moved=moved, status=task["Status"], failures=failures)
        time.sleep(1.0)


def _redrive_by_loop(
    sqs: SQSClient,
    dlq_url: str,
    target_url: str,
    *,
    max_messages: int | None,
    max_message_bytes: int,
    progress: Progress,
) -> RedriveResult:
    """Receive from the DLQ, send to the target, and only then delete from the DLQ.

    A crash in between leaves a copy in both queues (a duplicate), never in neither.
    On FIFO the group is kept, and the deduplication ID is derived from the DLQ
    message's ID: a crashed run that sends it again within 5 minutes is deduplicated,
    while a message that comes back to the DLQ later (a new ID) is never mistaken for
    a duplicate and dropped.
    """
    result = RedriveResult("loop")
    sender = Sender(sqs, target_url, max_message_bytes=max_message_bytes)
    fifo = is_fifo(target_url)
    while max_messages is None or result.moved < max_messages:
        wanted = (
            SQS_BATCH_LIMIT if max_messages is None else min(SQS_BATCH_LIMIT, max_messages - result.moved)
        )
        response = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=wanted,
            WaitTimeSeconds=1,
            VisibilityTimeout=60,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = [SqsMessage.from_sqs(raw) for raw in response.get("Messages", [])]
        if not messages:
            break
        sent = sender.send_batch([_resend(message, fifo) for message in messages])
        delivered = [messages[index] for index in sorted(sent.message_ids)]
        result.delete_failed += _delete(sqs, dlq_url, delivered)
        result.moved += len(delivered)
        for failure in sent.failures:
            result.failures.append(f"{messages[failure.index].message_id}: {failure.code}: {failure.reason}")
        result.failed += sent.failed
        progress(f"moved {result.moved}")
        if sent.failures:
            # They stay in the DLQ; stop rather than meet them again when they reappear.
            result.status = "FAILED"
            break
    return result


def _resend(message: SqsMessage, fifo: bool) -> OutgoingMessage:
    return OutgoingMessage(
        body=message.body,
        attributes=_as_input_attributes(message.message_attributes),
        group_id=message.group_id if fifo else None,
        deduplication_id=f"redrive-{message.message_id}" if fifo else None,
    )


def _as_input_attributes(
    attributes: Mapping[str, MessageAttributeValueOutputTypeDef],
) -> dict[str, MessageAttributeValueTypeDef]:
    converted: dict[str, MessageAttributeValueTypeDef] = {}
    for name, value in attributes.items():
        if "BinaryValue" in value:
            converted[name] = {"DataType": value["DataType"], "BinaryValue": value["BinaryValue"]}
        else:
            converted[name] = {"DataType": value["DataType"], "StringValue": value.get("StringValue", "")}
    return converted


def _delete(sqs: SQSClient, url: str, messages: list[SqsMessage]) -> int:
    """Delete in one batch call; returns how many could not be deleted."""
    if not messages:
        return 0
    response = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(messages)],
    )
    return len(response.get("Failed", []))
