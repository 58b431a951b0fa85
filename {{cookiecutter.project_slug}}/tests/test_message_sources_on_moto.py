"""Each message_source for real on the emulator: infra/aws/template.yaml deployed by deploy/aws_stack.py with
MessageSource set, then a real event of that source (EventBridge's PutEvents, SNS's Publish, S3's PutObject)
reaches the input queue, and the drain hands the app's handler the typed payload (engine/envelopes.py).

moto's CloudFormation builds the topic, the bucket and the rule with its target, but not all that makes them
send; the first tests prove each gap on the emulator, and ``apply_what_moto_cloudformation_skips`` applies
what the stack declares through SNS's and S3's own APIs instead (only where it is missing, so the same test
runs on LocalStack, whose CloudFormation does it). A gap that a moto release closes fails its proof: drop the
workaround then. The queue policy that lets only the source send (``aws:SourceArn``) is one of them: moto
neither makes it nor enforces any queue policy, so tests/test_infra_aws.py of the template checks its
statements, and no test here can show a refusal.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode_str

from deploy.aws_stack import (
    OIDC,
    AzureIdentity,
    StackOutputs,
    deploy_aws_stack,
    stack_name_for,
    stack_outputs,
    stack_parameters,
    token_issuer_and_audience,
)
from {{ cookiecutter.package_name }}.engine.aws_session import reset_clients
from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage
from {{ cookiecutter.package_name }}.engine.envelopes import (
    EventBridgeEvent,
    S3Object,
    SnsNotification,
    from_eventbridge,
    from_s3,
    from_sns,
)
from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue
from {{ cookiecutter.package_name }}.engine.settings import Settings
from {{ cookiecutter.package_name }}.handler import WorkItem, handle_message

from .deployer import delete_retained, delete_stack, deployer_session

pytestmark = pytest.mark.slow

REGION = "{{ cookiecutter.aws_region }}"


@pytest.fixture
def deployer(sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    monkeypatch.setenv("AWS_ENDPOINT_URL", sqs_endpoint)
    return deployer_session(REGION)


def deploy_tiny_stack(deployer: boto3.Session, template: str) -> tuple[str, dict[str, str]]:
    """A template of a few resources: the stack's name and its resources' physical IDs."""
    cloudformation = deployer.client("cloudformation")
    stack = f"gap-{uuid.uuid4().hex[:8]}"
    cloudformation.create_stack(StackName=stack, TemplateBody=template)
    resources = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    # (moto lists a resource it did not make without its names.)
    return stack, {
        r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if "LogicalResourceId" in r
    }


QUEUE_AND_TOPIC = """
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Topic:
    Type: AWS::SNS::Topic
  Subscription:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref Topic
      Protocol: sqs
      Endpoint: !GetAtt Queue.Arn
  Policy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Queue]
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: sns.amazonaws.com}
            Action: sqs:SendMessage
            Resource: !GetAtt Queue.Arn
            Condition: {ArnEquals: {aws:SourceArn: !Ref Topic}}
"""


def test_emulator_gap_cloudformation_makes_no_sns_subscription(deployer: boto3.Session) -> None:
    stack, made = deploy_tiny_stack(deployer, QUEUE_AND_TOPIC)
    try:
        assert set(made) >= {"Queue", "Topic"}
        assert "Subscription" not in made
        sns = deployer.client("sns")
        assert sns.list_subscriptions_by_topic(TopicArn=made["Topic"])["Subscriptions"] == []
    finally:
        delete_stack(deployer, stack)


def test_emulator_gap_cloudformation_makes_no_queue_policy(deployer: boto3.Session) -> None:
    stack, made = deploy_tiny_stack(deployer, QUEUE_AND_TOPIC)
    try:
        assert "Policy" not in made
        sqs = deployer.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=made["Queue"], AttributeNames=["Policy"])
        assert "Policy" not in attributes.get("Attributes", {})
    finally:
        delete_stack(deployer, stack)


def test_emulator_gap_sqs_enforces_no_queue_policy(deployer: boto3.Session) -> None:
    # A queue whose policy refuses every send, to everyone: SQS refuses the send; moto takes it.
    sqs = deployer.client("sqs")
    url = sqs.create_queue(QueueName=f"gap-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    try:
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        refuse = {"Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage", "Resource": arn}
        policy = json.dumps({"Version": "2012-10-17", "Statement": [refuse]})
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        assert sqs.send_message(QueueUrl=url, MessageBody="refused on AWS")["MessageId"]
    finally:
        sqs.delete_queue(QueueUrl=url)


NOTIFYING_BUCKET = """
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      NotificationConfiguration:
        QueueConfigurations:
          - Event: s3:ObjectCreated:*
            Queue: !GetAtt Queue.Arn
"""


def test_emulator_gap_cloudformation_ignores_a_buckets_notification_configuration(
    deployer: boto3.Session,
) -> None:
    stack, made = deploy_tiny_stack(deployer, NOTIFYING_BUCKET)
    s3 = deployer.client("s3")
    try:
        configuration = s3.get_bucket_notification_configuration(Bucket=made["Bucket"])
        assert "QueueConfigurations" not in configuration
        s3.put_object(Bucket=made["Bucket"], Key="new.json", Body=b"{}")
        sqs = deployer.client("sqs")
        received = sqs.receive_message(QueueUrl=made["Queue"], WaitTimeSeconds=0)
        assert received.get("Messages", []) == []
    finally:
        s3.delete_object(Bucket=made["Bucket"], Key="new.json")
        delete_stack(deployer, stack)


# The end to end tests: a source's stack per test, in an azd environment of its own.
TENANT_ID = "8a2b7c1e-3d4f-4a5b-9c6d-7e8f9a0b1c2d"
PRINCIPAL_ID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
BAKED_SOURCE = "{{ cookiecutter.message_source }}"
# S3 notifies standard queues only (the template's hook refuses s3 with a FIFO input queue).
SOURCES = ["sns", "eventbridge"] + ([] if "{{ cookiecutter.input_queue_name }}".endswith(".fifo") else ["s3"])


@pytest.fixture
def identity(deployer: boto3.Session) -> Iterator[AzureIdentity | None]:
    """With OIDC, the identity the stack's role trusts, and its issuer's provider made first: moto's
    CloudFormation cannot make an AWS::IAM::OIDCProvider (tests/oidc/test_deploy_aws_stack_oidc.py)."""
    if not OIDC:
        yield None
        return
    iam = deployer.client("iam")
    issuer, audience = token_issuer_and_audience(TENANT_ID)
    provider = iam.create_open_id_connect_provider(
        Url=f"https://{issuer}", ClientIDList=[audience], ThumbprintList=[]
    )["OpenIDConnectProviderArn"]
    yield AzureIdentity(TENANT_ID, PRINCIPAL_ID)
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=provider)


@dataclass(frozen=True)
class SourceStack:
    name: str
    outputs: StackOutputs
    source: str  # MessageSource
    source_arn: str  # the SourceArn output: the topic, the bucket or the rule
    event_source: str  # EventSource, the source of the events the rule takes


@pytest.fixture
def source_stack(
    deployer: boto3.Session, identity: AzureIdentity | None, request: pytest.FixtureRequest
) -> Iterator[SourceStack]:
    """The app's stack with MessageSource ``request.param``, deployed by deploy/aws_stack.py for an azd
    environment of its own; deleted after, with what it keeps (the input queue, the DLQ, a source bucket)."""
    environment = f"src{uuid.uuid4().hex[:6]}"
    stack = stack_name_for(environment)
    source = str(request.param)
    try:
        outputs = deploy_aws_stack(
            deployer, stack, identity, environment=environment, parameters={"MessageSource": source}
        )
        cloudformation = deployer.client("cloudformation")
        named, parameters = stack_outputs(cloudformation, stack), stack_parameters(cloudformation, stack)
        assert parameters["MessageSource"] == source
        yield SourceStack(stack, outputs, source, named["SourceArn"], parameters["EventSource"])
    finally:
        delete_stack(deployer, stack)
        delete_retained(deployer, [environment])


def declared(resource: str, deployer: boto3.Session, stack: str) -> dict[str, Any]:
    """A resource's properties as the deployed template declares them (intrinsic functions unresolved)."""
    body = deployer.client("cloudformation").get_template(StackName=stack)["TemplateBody"]
    template, problems = decode_str(body if isinstance(body, str) else json.dumps(body))
    assert not problems, problems
    return dict(template["Resources"][resource]["Properties"])


def apply_what_moto_cloudformation_skips(
    deployer: boto3.Session, stack: str, source: str, source_arn: str, queue_arn: str
) -> None:
    """EMULATOR WORKAROUND (the gaps proven above): the subscription or the bucket notification the stack
    declares, made through SNS's or S3's API when the stack did not make it. Nothing for EventBridge, whose
    rule and target moto's CloudFormation does make."""
    if source == "sns":
        sns = deployer.client("sns")
        subscriptions = sns.list_subscriptions_by_topic(TopicArn=source_arn)["Subscriptions"]
        if not any(s["Endpoint"] == queue_arn for s in subscriptions):
            subscription = declared("SourceSubscription", deployer, stack)
            assert (subscription["TopicArn"], subscription["Endpoint"]) == (
                {"Ref": "SourceTopic"},
                {"Fn::GetAtt": ["InputQueue", "Arn"]},
            )
            raw = str(subscription["RawMessageDelivery"]).lower()
            sns.subscribe(
                TopicArn=source_arn,
                Protocol=subscription["Protocol"],
                Endpoint=queue_arn,
                Attributes={"RawMessageDelivery": raw},
            )
    elif source == "s3":
        s3 = deployer.client("s3")
        bucket = source_arn.rsplit(":", 1)[-1]
        if "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket):
            notifications = declared("SourceBucket", deployer, stack)["NotificationConfiguration"]
            assert [q["Queue"] for q in notifications["QueueConfigurations"]] == [
                {"Fn::GetAtt": ["InputQueue", "Arn"]}
            ]
            configurations = [
                {"QueueArn": queue_arn, "Events": [q["Event"]]} for q in notifications["QueueConfigurations"]
            ]
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configurations}
            )


def send_through_the_source(deployer: boto3.Session, stack: SourceStack, item: WorkItem) -> str:
    """A real event of the source, as its producers make it: Publish, PutEvents, PutObject (s3: its key)."""
    body = item.model_dump_json()
    if stack.source == "sns":
        fifo = {"MessageGroupId": "tests"} if stack.source_arn.endswith(".fifo") else {}
        attributes = {"origin": {"DataType": "String", "StringValue": "moto"}}
        sns: Any = deployer.client("sns")
        sns.publish(TopicArn=stack.source_arn, Message=body, MessageAttributes=attributes, **fifo)
        return ""
    if stack.source == "eventbridge":
        entry = {"Source": stack.event_source, "DetailType": "WorkItem", "Detail": body}
        assert deployer.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0
        return ""
    key = f"incoming/{item.id} Zoë 1.json"  # S3 sends it URL-encoded, a space as '+'
    deployer.client("s3").put_object(Bucket=stack.source_arn.rsplit(":", 1)[-1], Key=key, Body=body.encode())
    return key


def typed_handler(source: str, received: list[Any]) -> Any:
    """The engine's envelope for the source around a handler that keeps what it is given."""

    def keep(payload: Any, message: SqsMessage) -> None:
        received.append(payload)

    if source == "sns":
        return from_sns(WorkItem)(keep)
    if source == "eventbridge":
        return from_eventbridge(WorkItem)(keep)
    return from_s3(S3Object)(keep)


@pytest.mark.parametrize("source_stack", SOURCES, indirect=True)
def test_a_real_event_of_the_source_reaches_the_handler_as_its_typed_payload(
    deployer: boto3.Session, source_stack: SourceStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, sqs = source_stack, deployer.client("sqs")
    queue_arn = sqs.get_queue_attributes(QueueUrl=stack.outputs.input_queue_url, AttributeNames=["QueueArn"])
    apply_what_moto_cloudformation_skips(
        deployer, stack.name, stack.source, stack.source_arn, queue_arn["Attributes"]["QueueArn"]
    )
    item = WorkItem(id=uuid.uuid4().hex[:8], action="ship", payload={"lines": 3})
    key = send_through_the_source(deployer, stack, item)

    # The app on the stack's queues (its own keys here: tests/oidc covers the identity's way in).
    settings = {**stack.outputs.app_settings(), "AWS_AUTH_MODE": "default_chain", "AWS_REGION": REGION}
    settings |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "SQS_WAIT_TIME_SECONDS": "1"}
    settings.pop("AWS_OIDC_ROLE_ARN", None)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    reset_clients()
    received: list[Any] = []
    keep = typed_handler(stack.source, received)

    def handle(message: SqsMessage) -> None:
        if stack.source == BAKED_SOURCE:
            handle_message(message)  # the app's own handler.py takes it too
        keep(message)

    drained = []
    try:
        for _ in range(10):  # AWS and LocalStack deliver a moment later; moto at once
            drained.append(drain_input_queue(Settings.from_env(), handler=handle))
            if received:
                break
    finally:
        reset_clients()

    assert sum(d.failed for d in drained) == 0
    [payload] = received
    if stack.source == "sns":
        assert isinstance(payload, SnsNotification)
        assert (payload.message, payload.topic_arn) == (item, stack.source_arn)
        assert payload.message_attributes["origin"].value == "moto"
    elif stack.source == "eventbridge":
        assert isinstance(payload, EventBridgeEvent)
        assert (payload.detail, payload.source, payload.detail_type) == (item, stack.event_source, "WorkItem")
    else:
        assert isinstance(payload, S3Object)
        assert (payload.bucket, payload.key) == (stack.source_arn.rsplit(":", 1)[-1], key)
        assert payload.size == len(item.model_dump_json().encode())
        assert payload.event_name.startswith("ObjectCreated:")
        # S3's test event came first, when the notification was set up: acknowledged, not handled.
        assert sum(d.received for d in drained) == 2
    assert sum(d.deleted for d in drained) == sum(d.received for d in drained)
