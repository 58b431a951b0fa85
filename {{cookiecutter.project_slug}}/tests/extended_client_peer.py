"""AWS's ``amazon-sqs-extended-client`` as a peer of the app, in a process of its own: importing it
replaces ``boto3.Session`` for the whole process, so in the tests' process it would turn the app's own
clients into extended clients. The endpoint and keys come from the environment (AWS_ENDPOINT_URL).

    python -m tests.extended_client_peer send QUEUE_URL BUCKET SIZE [GROUP]   -> {"sha256", "bytes"}
    python -m tests.extended_client_peer receive QUEUE_URL BUCKET             -> {"sha256", "bytes", ...}
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import sqs_extended_client  # noqa: F401  (patches boto3.Session)
from boto3 import Session


def payload(size: int) -> str:
    """``size`` bytes of text with two-byte characters, so that bytes and characters differ."""
    unit = "ë-0123456789"
    text = (unit * (size // len(unit.encode()) + 1)).encode()[:size].decode("utf-8", "ignore")
    return text + " " * (size - len(text.encode()))


def digest(body: str) -> dict[str, object]:
    return {"sha256": hashlib.sha256(body.encode()).hexdigest(), "bytes": len(body.encode())}


def main(argv: list[str]) -> int:
    command, queue_url, bucket = argv[:3]
    client = Session(region_name=os.environ["AWS_REGION"]).client("sqs")
    client.large_payload_support = bucket
    client.delete_payload_from_s3 = True
    if command == "send":
        body = payload(int(argv[3]))
        group = {"MessageGroupId": argv[4]} if len(argv) > 4 else {}
        attributes = {"kind": {"DataType": "String", "StringValue": "large"}}
        client.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=attributes, **group)
        print(json.dumps(digest(body)))
        return 0
    messages = client.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
    ).get("Messages", [])
    received = []
    for message in messages:
        received.append(
            {**digest(message["Body"]), "attributes": sorted(message.get("MessageAttributes", {}))}
        )
        client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    print(json.dumps(received))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
