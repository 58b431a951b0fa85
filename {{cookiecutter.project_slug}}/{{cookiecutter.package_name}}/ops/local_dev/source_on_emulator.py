"""The message_source on an emulator, for the smoke: made as infra/aws/template.yaml declares it, so that the
smoke's events reach the input queue through the source itself, as its producers send them.

- sns: a topic (FIFO for a FIFO queue) and the queue's subscription, raw message delivery off;
- s3: a bucket whose new objects are announced on the queue (S3 sends its test event when that is set);
- eventbridge: a rule for events of ``EVENT_SOURCE``, with the queue as its target, on an event bus of the
  run's own (the stack's rule is on the default bus; here, no other rule of a shared emulator sees them).

Each is named after the run and deleted afterwards. The stack's queue policy is not made: the emulators
enforce none (tests/test_message_sources_on_moto.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ...engine.aws_session import boto3_session, s3_client, sqs_client
from ...engine.queues import is_fifo
from ...engine.settings import Settings

# How the smoke's report names each source, and what it sends to.
LABELS = {"sns": "SNS", "s3": "S3", "eventbridge": "EventBridge"}
TARGETS = {"sns": "topic", "s3": "bucket", "eventbridge": "bus"}


@dataclass(frozen=True)
class Source:
    kind: str  # sns, s3 or eventbridge
    name: str  # the topic, the bucket or the event bus
    client: Any
    fifo: bool
    event_source: str
    test_events: int  # S3's test event, on the queue before any object's

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    @property
    def target(self) -> str:
        """What the events go to, by its name (a topic's ARN ends in it)."""
        return f"{TARGETS[self.kind]} {self.name.rsplit(':', 1)[-1]}"

    def send(self, payloads: list[str], group: str) -> str:
        """``payloads`` through the source, in one call where it takes several (PutObject takes one); the
        call's name. ``group``: the FIFO topic's message group (the rule's target names its own)."""
        if self.kind == "sns":
            fifo = {"MessageGroupId": group} if self.fifo else {}
            if len(payloads) == 1:
                self.client.publish(TopicArn=self.name, Message=payloads[0], **fifo)
                return "Publish"
            entries = [{"Id": str(n), "Message": p, **fifo} for n, p in enumerate(payloads)]
            answer = self.client.publish_batch(TopicArn=self.name, PublishBatchRequestEntries=entries)
            _refuse_failures(answer.get("Failed", []))
            return "PublishBatch"
        if self.kind == "eventbridge":
            event = {"Source": self.event_source, "DetailType": "WorkItem", "EventBusName": self.name}
            entries = [event | {"Detail": p} for p in payloads]
            answer = self.client.put_events(Entries=entries)
            _refuse_failures([e for e in answer.get("Entries", []) if "ErrorCode" in e])
            return "PutEvents"
        for key in payloads:
            self.client.put_object(Bucket=self.name, Key=key, Body=json.dumps({"key": key}).encode())
        return "PutObject"


def _refuse_failures(failed: list[Any]) -> None:
    if failed:
        raise RuntimeError(f"the source refused {len(failed)} of the events: {failed[0]}")


@contextmanager
def source_on_emulator(
    kind: str, settings: Settings, queue_url: str, run: str, event_source: str
) -> Iterator[Source]:
    """The source ``kind`` of the endpoint the settings point at, feeding ``queue_url``; deleted after."""
    queue_arn = sqs_client(settings).get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    arn = queue_arn["Attributes"]["QueueArn"]
    fifo = is_fifo(queue_url)
    session = boto3_session(settings.auth_mode, settings.region)
    if kind == "sns":
        sns = session.client("sns")
        attributes = {"FifoTopic": "true", "ContentBasedDeduplication": "true"} if fifo else {}
        name = f"smoke-{run}" + (".fifo" if fifo else "")
        topic = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        try:
            raw_off = {"RawMessageDelivery": "false"}
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=raw_off)
            yield Source(kind, topic, sns, fifo, event_source, test_events=0)
        finally:
            for subscription in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
                sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
            sns.delete_topic(TopicArn=topic)
    elif kind == "eventbridge":
        events = session.client("events")
        bus = events.create_event_bus(Name=f"smoke-{run}")["EventBusArn"].rsplit("/", 1)[-1]
        rule = f"smoke-{run}"
        target: dict[str, Any] = {"Id": "input-queue", "Arn": arn}
        if fifo:  # as the stack's rule: one group, named by the event source
            target["SqsParameters"] = {"MessageGroupId": event_source}
        try:
            events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": [event_source]}))
            events.put_targets(Rule=rule, EventBusName=bus, Targets=[target])
            yield Source(kind, bus, events, fifo, event_source, test_events=0)
        finally:
            events.remove_targets(Rule=rule, EventBusName=bus, Ids=["input-queue"])
            events.delete_rule(Name=rule, EventBusName=bus)
            events.delete_event_bus(Name=bus)
    else:
        s3 = s3_client(settings)
        bucket = f"smoke-{run}"
        where = {"LocationConstraint": settings.region}  # us-east-1 is where a bucket is without one
        placed = {} if settings.region == "us-east-1" else {"CreateBucketConfiguration": where}
        s3.create_bucket(Bucket=bucket, **placed)
        created = {"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]}
        try:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=created)
            yield Source(kind, bucket, s3, fifo, event_source, test_events=1)
        finally:
            for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
            s3.delete_bucket(Bucket=bucket)
