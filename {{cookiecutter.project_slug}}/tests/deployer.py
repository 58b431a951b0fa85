"""The deployer's side of the AWS step in tests: an AWS login (the emulator's keys) and stack teardown."""

from __future__ import annotations

import boto3

# What a deployer's own login is to the emulator; the app never sees these.
EMULATOR_KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def deployer_session(region: str) -> boto3.Session:
    """A session as `azd up`'s hook has it; the test points AWS_ENDPOINT_URL at the emulator first."""
    return boto3.Session(region_name=region, **EMULATOR_KEYS)


def delete_stack(session: boto3.Session, stack_name: str) -> None:
    cloudformation = session.client("cloudformation")
    cloudformation.delete_stack(StackName=stack_name)
    cloudformation.get_waiter("stack_delete_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )


def send_bodies(session: boto3.Session, queue_url: str, bodies: list[str]) -> None:
    sqs = session.client("sqs")
    group = {"MessageGroupId": "deploy"} if queue_url.endswith(".fifo") else {}
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body, **group)  # type: ignore[arg-type]
