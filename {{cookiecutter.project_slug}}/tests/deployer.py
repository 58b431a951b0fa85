"""The deployer's side of the AWS step in tests: an AWS login (the emulator's keys), stack teardown, and the
buckets a stack leaves behind."""

from __future__ import annotations

import boto3

from deploy.aws_stack import queue_names_for, source_bucket_prefix_for, stack_status

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


def delete_retained(session: boto3.Session, environments: list[str]) -> None:
    """What deleted stacks leave behind (DeletionPolicy: Retain), by their environments' names: the input
    queues and DLQs, and the s3 source's buckets with their files."""
    sqs = session.client("sqs")
    account = session.client("sts").get_caller_identity()["Account"]
    for environment in environments:
        for name in queue_names_for(environment).values():
            for url in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []):
                if url.rsplit("/", 1)[-1] == name:
                    sqs.delete_queue(QueueUrl=url)
        prefix = source_bucket_prefix_for(environment)
        delete_bucket(session, f"{prefix}-{account}-{session.region_name}-files")


def empty_bucket(session: boto3.Session, name: str) -> None:
    """Delete every object version in the bucket (a stack deletes only an empty one); none: nothing."""
    s3 = session.client("s3")
    if name not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        return
    versions = s3.list_object_versions(Bucket=name)
    for entry in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]:
        s3.delete_object(Bucket=name, Key=entry["Key"], VersionId=entry["VersionId"])


def delete_bucket(session: boto3.Session, name: str) -> None:
    """Empty the bucket and delete it; a bucket that does not exist is left alone."""
    empty_bucket(session, name)
    if name in {b["Name"] for b in session.client("s3").list_buckets().get("Buckets", [])}:
        session.client("s3").delete_bucket(Bucket=name)
