"""Queue addresses and queue setup, written once for AWS, LocalStack and moto alike.

A queue setting may be a name or a full URL. A name is resolved once per client
with ``GetQueueUrl``, so one settings file works against every endpoint (their
URL forms and default accounts differ: LocalStack 000000000000, moto 123456789012).

``python -m <package> create-queues`` creates the queues on the endpoint the settings point at.
It needs only boto3, so LocalStack's ready hook runs it with LocalStack's own Python.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from .settings import Settings


# Entries in one SendMessageBatch, DeleteMessageBatch or ChangeMessageVisibilityBatch; messages per receive.
SQS_BATCH_LIMIT = 10


def is_fifo(queue: str) -> bool:
    return queue.endswith(".fifo")


def queue_name(queue: str) -> str:
    """The name part of a queue name or URL."""
    return queue.rstrip("/").rsplit("/", 1)[-1]


@functools.lru_cache(maxsize=64)
def queue_url(client: SQSClient, queue: str) -> str:
    if queue.startswith(("http://", "https://")):
        return queue
    return client.get_queue_url(QueueName=queue)["QueueUrl"]


def queue_arn(client: SQSClient, url: str) -> str:
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


@dataclass(frozen=True)
class QueueDepth:
    """SQS's approximate counts: visible, in flight (received, not yet deleted), delayed."""

    visible: int
    in_flight: int
    delayed: int

    @property
    def backlog(self) -> int:
        """What drains still have to finish: the visible messages and those in flight."""
        return self.visible + self.in_flight


def queue_depth(client: SQSClient, url: str) -> QueueDepth:
    attributes = client.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return QueueDepth(
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


@dataclass(frozen=True)
class RedriveTarget:
    """Where the queue's redrive policy moves a message, and after how many receives."""

    dlq_url: str
    max_receive_count: int


def redrive_target(client: SQSClient, url: str) -> RedriveTarget | None:
    """The queue's redrive policy, or None when it has none."""
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
    policy = attributes.get("Attributes", {}).get("RedrivePolicy")
    if not policy:
        return None
    redrive = json.loads(policy)
    account, name = str(redrive["deadLetterTargetArn"]).split(":")[4:6]
    dlq_url = client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    # A number from moto and AWS, a string from LocalStack.
    return RedriveTarget(dlq_url, int(redrive["maxReceiveCount"]))


def dead_letter_queue_url(client: SQSClient, url: str) -> str | None:
    """The DLQ named by the queue's redrive policy, or None when it has none."""
    target = redrive_target(client, url)
    return target.dlq_url if target else None


@dataclass(frozen=True)
class QueueSet:
    input_url: str
    output_url: str
    dlq_url: str


def ensure_queues(client: SQSClient, settings: Settings) -> QueueSet:
    """Create the DLQ, the input queue with its redrive policy, and the output queue.

    Idempotent: existing queues keep their data; their redrive policy is set again. Each takes messages of
    up to SQS_MAX_MESSAGE_BYTES (MaximumMessageSize).
    """
    # Every queue takes the largest message the app sends (the DLQ: what the input queue holds).
    size = {"MaximumMessageSize": str(settings.max_message_bytes)}
    dlq_url = _create(client, queue_name(settings.dlq), size)
    redrive = json.dumps(
        {
            "deadLetterTargetArn": queue_arn(client, dlq_url),
            "maxReceiveCount": str(settings.max_receive_count),
        }
    )
    input_url = _create(
        client,
        queue_name(settings.input_queue),
        {**size, "VisibilityTimeout": str(settings.visibility_timeout_seconds)},
    )
    client.set_queue_attributes(QueueUrl=input_url, Attributes={"RedrivePolicy": redrive})
    output_url = _create(client, queue_name(settings.output_queue), size)
    return QueueSet(input_url=input_url, output_url=output_url, dlq_url=dlq_url)


def _create(client: SQSClient, name: str, attributes: dict[str, str]) -> str:
    if is_fifo(name):
        attributes = {**attributes, "FifoQueue": "true", "ContentBasedDeduplication": "true"}
    return client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
