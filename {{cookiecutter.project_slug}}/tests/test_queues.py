"""Queue setup, the one piece of code the tests, the local emulator and LocalStack's hook all run."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.engine.queues import ensure_queues, is_fifo, queue_arn
from {{ cookiecutter.package_name }}.engine.settings import Settings

from .conftest import CONFIGURED_QUEUES, unique

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]


def client_for(endpoint: str) -> SQSClient:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="{{ cookiecutter.aws_region }}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def fresh_names() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {key: unique(name, suffix) for key, name in CONFIGURED_QUEUES.items()}


def assert_queues_exist_with_the_redrive(
    client: SQSClient, names: dict[str, str], max_receive_count: int
) -> None:
    urls = {key: client.get_queue_url(QueueName=name)["QueueUrl"] for key, name in names.items()}
    dlq_arn = queue_arn(client, urls["SQS_DLQ"])
    attributes = client.get_queue_attributes(QueueUrl=urls["SQS_INPUT_QUEUE"], AttributeNames=["All"])[
        "Attributes"
    ]
    redrive = json.loads(attributes["RedrivePolicy"])
    # moto answers maxReceiveCount as a number, LocalStack as a string.
    assert (redrive["deadLetterTargetArn"], int(redrive["maxReceiveCount"])) == (dlq_arn, max_receive_count)
    for key, url in urls.items():
        kind = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert (kind.get("FifoQueue") == "true") == is_fifo(names[key])


def test_ensure_queues_creates_the_dlq_the_redrive_and_the_output_queue_once(sqs_endpoint: str) -> None:
    names = fresh_names()
    settings = Settings(
        input_queue=names["SQS_INPUT_QUEUE"],
        output_queue=names["SQS_OUTPUT_QUEUE"],
        dlq=names["SQS_DLQ"],
        max_receive_count=4,
    )
    client = client_for(sqs_endpoint)
    first = ensure_queues(client, settings)
    try:
        assert ensure_queues(client, settings) == first  # idempotent
        assert_queues_exist_with_the_redrive(client, names, 4)
    finally:
        for url in (first.input_url, first.output_url, first.dlq_url):
            client.delete_queue(QueueUrl=url)


def test_the_queues_command_creates_the_queues_of_a_settings_file(sqs_endpoint: str, tmp_path: Path) -> None:
    names = fresh_names()
    values = json.loads((PROJECT / "local.settings.json").read_text(encoding="utf-8"))["Values"]
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(
        json.dumps({"IsEncrypted": False, "Values": {**values, **names}}), encoding="utf-8"
    )

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "{{ cookiecutter.package_name }}",
            "create-queues",
            "--settings",
            str(settings_file),
            "--endpoint-url",
            sqs_endpoint,
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    client = client_for(sqs_endpoint)
    try:
        assert names["SQS_INPUT_QUEUE"] in result.stdout
        assert_queues_exist_with_the_redrive(client, names, int(values["SQS_MAX_RECEIVE_COUNT"]))
    finally:
        for name in names.values():
            client.delete_queue(QueueUrl=client.get_queue_url(QueueName=name)["QueueUrl"])
