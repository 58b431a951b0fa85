"""deploy/aws_stack.py for real: infra/aws/template.yaml through CloudFormation on the emulator (moto), its
outputs read, a rerun that changes nothing, then the app drains the stack's queue on the settings the hook
writes. (With OIDC, tests/oidc/test_deploy_aws_stack_oidc.py runs the same with the identity instead.)"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import boto3
import pytest

from deploy.aws_stack import StackOutputs, deploy_aws_stack, queue_names_for
from {{ cookiecutter.package_name }}.engine.aws_session import reset_clients
from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage
from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue
from {{ cookiecutter.package_name }}.engine.settings import Settings

from .deployer import delete_stack, deployer_session, send_bodies

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
