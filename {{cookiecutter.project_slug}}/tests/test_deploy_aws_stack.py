"""deploy/aws_stack.py for real: infra/aws/template.yaml through CloudFormation on the emulator (moto), its
outputs read, a rerun that changes nothing, then the app drains the stack's queue on the settings the hook
writes. (With OIDC, tests/oidc/test_deploy_aws_stack_oidc.py runs the same with the identity instead.)"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from deploy.aws_stack import (
    QUEUE_NAME_PARAMETERS,
    StackOutputs,
    deploy_aws_stack,
    deploy_stack,
    main,
    queue_names_for,
    source_bucket_prefix_for,
    stack_name_for,
    stack_parameters,
    stack_status,
)
from {{ cookiecutter.package_name }}.engine.aws_session import reset_clients
from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage
from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue
from {{ cookiecutter.package_name }}.engine.settings import Settings

from .conftest import http_post, send_params
from .deployer import (
    delete_bucket,
    delete_retained,
    delete_stack,
    deployer_session,
    empty_bucket,
    send_bodies,
)

pytestmark = pytest.mark.slow

REGION = "{{ cookiecutter.aws_region }}"


@pytest.fixture
def deployer(sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    monkeypatch.setenv("AWS_ENDPOINT_URL", sqs_endpoint)
    return deployer_session(REGION)


@pytest.fixture
def stack_name(deployer: boto3.Session) -> Iterator[str]:
    name = f"deploy-test-{uuid.uuid4().hex[:8]}"
    yield name
    delete_stack(deployer, name)
    delete_retained(deployer, [""])


def test_the_hook_deploys_the_stack_once_and_the_app_drains_its_queue(
    deployer: boto3.Session, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = deploy_aws_stack(deployer, stack_name)

    stack = deployer.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    by_key = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs == StackOutputs.from_stack(by_key)
    assert outputs.input_queue_url.endswith("/{{ cookiecutter.input_queue_name }}")
    # Rerunning changes nothing and gives the same outputs.
    assert deploy_aws_stack(deployer, stack_name) == outputs

    bodies = [json.dumps({"id": str(n), "action": "ship"}) for n in range(3)]
    send_bodies(deployer, outputs.input_queue_url, bodies)
    # The app on the settings the hook writes: queue URLs from the stack, its own credentials.
    for name, value in outputs.app_settings().items():
        monkeypatch.setenv(name, value)
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("SQS_WAIT_TIME_SECONDS", "1")
    reset_clients()
    handled: list[str] = []
    lock = threading.Lock()

    def handler(message: SqsMessage) -> None:
        with lock:
            handled.append(message.body)

    try:
        summary = drain_input_queue(Settings.from_env(), handler=handler)
    finally:
        reset_clients()

    assert sorted(handled) == sorted(bodies)
    assert summary.deleted == len(bodies)


def test_each_azd_environment_gets_its_own_queues_and_deleting_the_stack_keeps_input_and_dlq(
    deployer: boto3.Session,
) -> None:
    environments = [f"dev{uuid.uuid4().hex[:6]}", f"prod{uuid.uuid4().hex[:6]}"]
    stacks = [f"deploy-test-{environment}" for environment in environments]
    sqs = deployer.client("sqs")
    try:
        dev, prod = (
            deploy_aws_stack(deployer, stack, environment=environment)
            for stack, environment in zip(stacks, environments, strict=True)
        )
        names = queue_names_for(environments[0])
        assert dev.input_queue_url.endswith("/" + names["InputQueueName"])
        assert dev.dlq_url.endswith("/" + names["DeadLetterQueueName"])
        assert {dev.input_queue_url, dev.output_queue_url, dev.dlq_url}.isdisjoint(
            {prod.input_queue_url, prod.output_queue_url, prod.dlq_url}
        )
    finally:
        for stack in stacks:
            delete_stack(deployer, stack)
    # Retain: the backlog and the dead letters outlive the stack; the output queue goes with it.
    left = {url.rsplit("/", 1)[-1] for url in sqs.list_queues().get("QueueUrls", [])}
    for outputs in (dev, prod):
        name = {
            url: url.rsplit("/", 1)[-1]
            for url in (outputs.input_queue_url, outputs.output_queue_url, outputs.dlq_url)
        }
        assert {name[outputs.input_queue_url], name[outputs.dlq_url]} <= left
        assert name[outputs.output_queue_url] not in left
        for url in (outputs.input_queue_url, outputs.dlq_url):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name[url])["QueueUrl"])


@pytest.mark.usefixtures("hook_without_azd")
def test_an_environment_deployed_before_per_environment_stacks_keeps_its_stack_and_its_backlog(
    deployer: boto3.Session,
    capsys: pytest.CaptureFixture[str],
) -> None:
    environment = f"dev{uuid.uuid4().hex[:6]}"
    earlier, per_environment = stack_name_for(""), stack_name_for(environment)
    cloudformation, sqs = deployer.client("cloudformation"), deployer.client("sqs")
    try:
        # As the template deployed every environment before: the slug's stack, the answered queue names.
        before = deploy_stack(deployer, earlier, queue_names_for(""))
        send_bodies(deployer, before.input_queue_url, ["waiting since before the update"])

        # The environment recorded that stack's input queue: it keeps deploying that stack, and the app
        # keeps its queues.
        recorded = {"AZURE_ENV_NAME": environment, "AWS_STACK_INPUT_QUEUE_URL": before.input_queue_url}
        assert main(["--region", REGION], recorded) == 0

        printed = capsys.readouterr().out
        assert f"updating it, not making {per_environment}" in printed
        assert f"SQS_INPUT_QUEUE={before.input_queue_url}\n" in printed
        assert stack_status(cloudformation, per_environment) is None
        attributes = sqs.get_queue_attributes(
            QueueUrl=before.input_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "1"

        # An environment that recorded another stack's queue gets a stack and queues of its own.
        other = {**recorded, "AWS_STACK_INPUT_QUEUE_URL": before.output_queue_url}
        assert main(["--region", REGION], other) == 0
        assert stack_status(cloudformation, per_environment) == "CREATE_COMPLETE"
        assert f"SQS_INPUT_QUEUE={before.input_queue_url}\n" not in capsys.readouterr().out
    finally:
        for name in (earlier, per_environment):
            delete_stack(deployer, name)
        delete_retained(deployer, ["", environment])


def test_an_existing_stack_keeps_its_queue_names(deployer: boto3.Session, stack_name: str) -> None:
    try:
        made = deploy_aws_stack(deployer, stack_name, environment="first")

        # Another environment's names would replace the queues, their messages left behind: they stay.
        # (moto does not replace a renamed queue on update, so the stack's parameters tell, not its URLs.)
        assert deploy_aws_stack(deployer, stack_name, environment="second") == made
        stack = deployer.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
        assert {name: parameters[name] for name in QUEUE_NAME_PARAMETERS} == queue_names_for("first")
        # So does the s3 source's bucket: a new name, a new bucket, and its producers' files unannounced.
        assert parameters["SourceBucketPrefix"] == source_bucket_prefix_for("first")
    finally:
        delete_stack(deployer, stack_name)
        delete_retained(deployer, ["first", "second"])


@pytest.mark.usefixtures("hook_without_azd")
def test_the_payload_bucket_is_made_when_asked_kept_when_not_and_the_app_offloads_to_it(
    deployer: boto3.Session,
    functions: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    environment = f"big{uuid.uuid4().hex[:6]}"
    stack = stack_name_for(environment)
    bucket = ""
    try:
        # Asked for once, as `azd env set AWS_LARGE_PAYLOAD_BUCKET create` asks every later `azd up`.
        asked = {"AZURE_ENV_NAME": environment, "AWS_LARGE_PAYLOAD_BUCKET": "create"}
        assert main(["--region", REGION], asked) == 0
        outputs = deploy_aws_stack(deployer, stack, environment=environment)  # not asked: kept
        bucket = outputs.large_payload_bucket
        assert bucket
        assert f"SQS_LARGE_PAYLOAD_BUCKET={bucket}\n" in capsys.readouterr().out
        assert stack_parameters(deployer.client("cloudformation"), stack)["LargePayloadBucket"] == "create"
        deployer.client("s3").head_bucket(Bucket=bucket)

        # The app on the settings the hook writes: a body past the queue's limit goes through the bucket.
        for name, value in outputs.app_settings().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("SQS_OUTPUT_QUEUE", outputs.input_queue_url)  # the send comes back to the drain
        monkeypatch.setenv("AWS_REGION", REGION)
        monkeypatch.setenv("SQS_WAIT_TIME_SECONDS", "1")
        reset_clients()
        body = json.dumps({"id": "large", "blob": "x" * Settings.from_env().max_message_bytes})
        response = functions["send_message"](
            http_post("messages", body.encode(), send_params(outputs.input_queue_url))
        )
        assert response.status_code == 202, response.get_body()
        stored = deployer.client("s3").list_objects_v2(Bucket=bucket)["KeyCount"]
        handled: list[str] = []
        try:
            drain_input_queue(Settings.from_env(), handler=lambda message: handled.append(message.body))
        finally:
            reset_clients()
        assert (stored, handled) == (1, [body])
    finally:
        empty_bucket(deployer, bucket)  # a stack deletes only an empty bucket
        delete_stack(deployer, stack)
        delete_bucket(deployer, bucket)
        delete_retained(deployer, [environment])
{%- if not cookiecutter.input_queue_name.endswith(".fifo") %}


def test_each_azd_environment_gets_its_own_s3_source_bucket(deployer: boto3.Session) -> None:
    # (S3 notifies standard queues only: a FIFO bake has no s3 source, and no bucket to name.)
    from deploy.aws_stack import stack_outputs

    environments = [f"dev{uuid.uuid4().hex[:6]}", f"prod{uuid.uuid4().hex[:6]}"]
    account = deployer.client("sts").get_caller_identity()["Account"]
    buckets = [f"{source_bucket_prefix_for(e)}-{account}-{REGION}-files" for e in environments]
    try:
        for environment, bucket in zip(environments, buckets, strict=True):
            stack = stack_name_for(environment)
            deploy_aws_stack(deployer, stack, environment=environment, parameters={"MessageSource": "s3"})
            source = stack_outputs(deployer.client("cloudformation"), stack)["SourceArn"]
            assert source == f"arn:aws:s3:::{bucket}"
        assert len(set(buckets)) == 2
        assert set(buckets) <= {b["Name"] for b in deployer.client("s3").list_buckets()["Buckets"]}
    finally:
        for environment in environments:
            delete_stack(deployer, stack_name_for(environment))
        delete_retained(deployer, environments)  # the buckets too, kept with their files
{%- endif %}
