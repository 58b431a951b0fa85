"""Realistic events of what usually feeds SQS, shaped as AWS's documentation shows them (field for field,
with fresh IDs), for the smoke and the tests: an S3 event notification (and S3's test event), an SNS
notification as SQS receives it (raw message delivery off) and an EventBridge event."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

ACCOUNT = "123456789012"
REGION = "us-west-2"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def s3_record(
    bucket: str, key: str, size: int = 1024, event_name: str = "ObjectCreated:Put"
) -> dict[str, Any]:
    """One record of S3's notification; the key URL-encoded as S3 sends it ('+' for a space)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": _now(),
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "testConfigRule",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": quote_plus(key),
                "size": size,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                "sequencer": uuid.uuid4().hex[:18].upper(),
            },
        },
    }


def s3_notification(bucket: str, *keys: str) -> str:
    return json.dumps({"Records": [s3_record(bucket, key) for key in keys]})


def s3_test_event(bucket: str) -> str:
    """What S3 sends once when a bucket's notification to the queue is set up."""
    return json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": _now(),
            "Bucket": bucket,
            "RequestId": "5582815E1AEA5ADF",
            "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
        }
    )


def sns_notification(topic: str, message: str, subject: str | None = None) -> str:
    """An SNS notification as an SQS subscription without raw message delivery receives it."""
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic}"
    notification = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic_arn,
        "Subject": subject,
        "Message": message,
        "Timestamp": _now(),
        "SignatureVersion": "1",
        "Signature": "EXAMPLElDMXvB8r9R83tGoNn0ecwd5UjllzsvSvbItzfaMpN2nk5HVSw7XnOn/49IkxDKz8YrlH2qJXj2",
        "SigningCertURL": (
            f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
        ),
        "UnsubscribeURL": (
            f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic_arn}:{uuid.uuid4()}"
        ),
        "MessageAttributes": {"origin": {"Type": "String", "Value": "smoke"}},
    }
    if subject is None:
        del notification["Subject"]
    return json.dumps(notification)


def eventbridge_event(source: str, detail_type: str, detail: dict[str, Any]) -> str:
    """An EventBridge event as a rule's SQS target receives it."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": ACCOUNT,
            "time": _now()[:19] + "Z",
            "region": REGION,
            "resources": [],
            "detail": detail,
        }
    )
