"""The embedded emulator behaves like SQS where the app relies on it.

moto 5.2.5 differs in three places of SQS, two of CloudFormation and one of EventBridge;
local_dev/emulator.py patches them where moto starts. Each check runs on the app's emulator
(patched) and on a plain ``python -m moto.server`` in a child process (unpatched): the second proves
the bug is moto's, and fails once a moto release fixes it, which is the time to drop the patch.
"""

from __future__ import annotations

import json
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
from botocore.parsers import ResponseParserError
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


# A policy whose second statement is there only under a condition, as infra/aws/template.yaml grants the
# payload bucket: CloudFormation drops an item that is AWS::NoValue from its list.
CONDITIONAL_STATEMENT = """
Conditions:
  Never: !Equals [a, b]
Resources:
  Grants:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: sqs:GetQueueUrl
            Resource: "*"
          - !If [Never, {Effect: Allow, Action: s3:GetObject, Resource: "*"}, !Ref AWS::NoValue]
"""


def emulator_session() -> boto3.Session:
    return boto3.Session(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def statements_of_a_conditional_policy(client: SQSClient) -> list[dict[str, object]]:
    """The stack of CONDITIONAL_STATEMENT on the emulator behind ``client``: its policy's statements."""
    session = emulator_session()
    url = client.meta.endpoint_url
    cloudformation = session.client("cloudformation", endpoint_url=url)
    stack = f"novalue-{uuid.uuid4().hex[:8]}"
    cloudformation.create_stack(StackName=stack, TemplateBody=CONDITIONAL_STATEMENT)
    try:
        [resource] = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
        iam = session.client("iam", endpoint_url=url)
        arn = resource["PhysicalResourceId"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        return list(document["Statement"])  # type: ignore[index]
    finally:
        cloudformation.delete_stack(StackName=stack)


def test_a_no_value_item_leaves_its_list_as_cloudformation_does(patched_moto: SQSClient) -> None:
    [statement] = statements_of_a_conditional_policy(patched_moto)
    assert statement["Action"] == "sqs:GetQueueUrl"


def test_unpatched_moto_keeps_a_no_value_item_as_null_and_refuses_the_policy(
    unpatched_moto: SQSClient,
) -> None:
    with pytest.raises(ClientError, match="MalformedPolicyDocument"):
        statements_of_a_conditional_policy(unpatched_moto)


# A parameter the stack took the default of, as deploy/aws_stack.py leaves LargePayloadBucket unasked.
DEFAULTED_PARAMETER = """
Parameters:
  Kept:
    Type: String
    Default: as-made
  Given:
    Type: String
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${Given}-${Kept}"
"""


def update_keeping_a_defaulted_parameter(client: SQSClient) -> dict[str, str]:
    """Make the stack with Kept defaulted, change the template's default, update with UsePreviousValue: the
    stack's parameters after (CloudFormation keeps the value the stack has: as-made)."""
    cloudformation = emulator_session().client(
        "cloudformation", endpoint_url=client.meta.endpoint_url, config=Config(retries={"max_attempts": 1})
    )
    stack = f"previous-{uuid.uuid4().hex[:8]}"
    given = [{"ParameterKey": "Given", "ParameterValue": stack}]
    cloudformation.create_stack(StackName=stack, TemplateBody=DEFAULTED_PARAMETER, Parameters=given)
    try:
        cloudformation.update_stack(
            StackName=stack,
            TemplateBody=DEFAULTED_PARAMETER.replace("Default: as-made", "Default: changed"),
            Parameters=[*given, {"ParameterKey": "Kept", "UsePreviousValue": True}],
        )
        [made] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
        return {p["ParameterKey"]: p["ParameterValue"] for p in made["Parameters"]}
    finally:
        cloudformation.delete_stack(StackName=stack)


def test_use_previous_value_keeps_a_parameter_the_stack_took_the_default_of(patched_moto: SQSClient) -> None:
    assert update_keeping_a_defaulted_parameter(patched_moto)["Kept"] == "as-made"


def test_unpatched_moto_fails_use_previous_value_of_a_defaulted_parameter(unpatched_moto: SQSClient) -> None:
    with pytest.raises((ClientError, ResponseParserError)):  # a KeyError in moto: HTTP 500
        update_keeping_a_defaulted_parameter(unpatched_moto)


def event_a_rule_sends_to_a_queue(client: SQSClient) -> dict[str, Any]:
    """PutEvents through a rule whose target is a queue (as the eventbridge source's stack makes it): the
    event the queue receives."""
    url = client.create_queue(QueueName=f"events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = emulator_session().client("events", endpoint_url=client.meta.endpoint_url)
    rule = f"to-queue-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": [rule]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": arn}])
    try:
        entry = {"Source": rule, "DetailType": "Proof", "Detail": json.dumps({"n": 1})}
        events.put_events(Entries=[entry])  # type: ignore[list-item]
        [message] = client.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
        event: dict[str, Any] = json.loads(message["Body"])
        return event
    finally:
        events.remove_targets(Rule=rule, Ids=["queue"])
        events.delete_rule(Name=rule)
        client.delete_queue(QueueUrl=url)


def test_an_event_a_rule_sends_to_a_queue_names_its_account(patched_moto: SQSClient) -> None:
    event = event_a_rule_sends_to_a_queue(patched_moto)
    assert event["account"] == "123456789012"
    assert (event["detail-type"], event["detail"]) == ("Proof", {"n": 1})


def test_unpatched_moto_sends_a_rules_event_without_its_account(unpatched_moto: SQSClient) -> None:
    event = event_a_rule_sends_to_a_queue(unpatched_moto)
    assert "account" not in event
    assert (event["detail-type"], event["detail"]) == ("Proof", {"n": 1})
