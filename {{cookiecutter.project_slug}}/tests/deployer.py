"""The deployer's side of the AWS step in tests: an AWS login (the emulator's keys) and stack teardown."""

from __future__ import annotations

import boto3

from deploy.aws_stack import queue_names_for, stack_status

# What a deployer's own login is to the emulator; the app never sees these.
EMULATOR_KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def deployer_session(region: str) -> boto3.Session:
    """A session as `azd up`'s hook has it; the test points AWS_ENDPOINT_URL at the emulator first."""
    return boto3.Session(region_name=region, **EMULATOR_KEYS)


def delete_stack(session: boto3.Session, stack_name: str) -> None:
    """Delete the stack and wait; a stack that does not exist is left alone."""
    cloudformation = session.client("cloudformation")
    if stack_status(cloudformation, stack_name) is None:
        return
    cloudformation.delete_stack(StackName=stack_name)
    cloudformation.get_waiter("stack_delete_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )


def send_bodies(session: boto3.Session, queue_url: str, bodies: list[str]) -> None:
    sqs = session.client("sqs")
    group = {"MessageGroupId": "deploy"} if queue_url.endswith(".fifo") else {}
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body, **group)  # type: ignore[arg-type]


def delete_retained_queues(session: boto3.Session, environments: list[str]) -> None:
    """The input queues and DLQs deleted stacks leave behind (Retain), by their environments' names."""
    sqs = session.client("sqs")
    for environment in environments:
        for name in queue_names_for(environment).values():
            for url in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []):
                if url.rsplit("/", 1)[-1] == name:
                    sqs.delete_queue(QueueUrl=url)
