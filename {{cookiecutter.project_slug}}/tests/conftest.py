"""A real SQS endpoint over HTTP on 127.0.0.1, and the app's settings pointed at it.

By default a moto server starts for the session and stops after it. Set
``SQS_TEST_ENDPOINT_URL`` (for example ``http://127.0.0.1:4566``) to run the same
tests against a running LocalStack instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import azure.functions as func
import pytest
from moto.server import ThreadedMotoServer
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.aws_session import reset_clients, sqs_client
from {{ cookiecutter.package_name }}.queues import QueueSet, ensure_queues, is_fifo
from {{ cookiecutter.package_name }}.settings import Settings

CONFIGURED_QUEUES = {
    "SQS_INPUT_QUEUE": "{{ cookiecutter.input_queue_name }}",
    "SQS_OUTPUT_QUEUE": "{{ cookiecutter.output_queue_name }}",
    "SQS_DLQ": "{{ cookiecutter.dlq_name }}",
}


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    external = os.environ.get("SQS_TEST_ENDPOINT_URL")
    if external:
        yield external
        return
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass(frozen=True)
class AppUnderTest:
    settings: Settings
    client: SQSClient
    queues: QueueSet


def unique(name: str, suffix: str) -> str:
    """The configured queue name made unique per test, keeping its '.fifo' ending."""
    stem = name.removesuffix(".fifo")[: 80 - len(suffix) - 6]
    return f"{stem}-{suffix}" + (".fifo" if is_fifo(name) else "")


@pytest.fixture
def app_env(sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppUnderTest]:
    """Fresh queues for one test, with the app's settings (environment) pointing at them."""
    suffix = uuid.uuid4().hex[:8]
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL_SQS", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    environment = {
        **{key: unique(name, suffix) for key, name in CONFIGURED_QUEUES.items()},
        "AWS_ENDPOINT_URL": sqs_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_AUTH_MODE": "default_chain",
        "SQS_MAX_RECEIVE_COUNT": "3",
        "SQS_WAIT_TIME_SECONDS": "1",
        "SQS_DRAIN_BUDGET_SECONDS": "30",
        "SQS_VISIBILITY_TIMEOUT_SECONDS": "30",
        "SQS_RETRY_BACKOFF_BASE_SECONDS": "0",
        "SQS_POLL_SCHEDULE": "0 */1 * * * *",
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    reset_clients()
    settings = Settings.from_env()
    client = sqs_client(settings)
    queues = ensure_queues(client, settings)
    yield AppUnderTest(settings, client, queues)
    for url in (queues.input_url, queues.output_url, queues.dlq_url):
        client.delete_queue(QueueUrl=url)
    reset_clients()


@pytest.fixture(scope="session")
def functions() -> dict[str, Callable[..., object]]:
    """The app's functions by name, taken from the FunctionApp the host indexes.

    Session-scoped: like the host, index once (``get_functions`` refuses a second call).
    """
    from function_app import app

    return {f.get_function_name(): f.get_user_function() for f in app.get_functions()}


def drain_all(client: SQSClient, url: str) -> list[str]:
    """Every body on a queue, deleting as it goes (test observer, not the app's consumer)."""
    bodies: list[str] = []
    while True:
        messages = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
        ).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def queue_depth(client: SQSClient, url: str) -> int:
    attributes = client.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def http_post(route: str, body: bytes, params: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(method="POST", url=f"/api/{route}", body=body, params=params or {}, headers={})


def send_params(queue: str) -> dict[str, str]:
    """Query parameters a send needs for this queue kind (FIFO needs a group)."""
    return {"group_id": "tests"} if is_fifo(queue) else {}
