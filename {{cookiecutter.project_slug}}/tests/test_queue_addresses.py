"""A queue setting may be a name (resolved once with GetQueueUrl) or a full URL (used as is)."""

from __future__ import annotations

from {{ cookiecutter.package_name }}.engine.aws_session import sqs_client
from {{ cookiecutter.package_name }}.engine.queues import queue_name, queue_url
from {{ cookiecutter.package_name }}.engine.settings import Settings

from .conftest import AppUnderTest


def count_calls(app_env: AppUnderTest, operation: str) -> list[str]:
    calls: list[str] = []
    app_env.client.meta.events.register(
        f"before-call.sqs.{operation}", lambda **kwargs: calls.append(operation)
    )
    return calls


def test_a_name_is_resolved_once_per_client(app_env: AppUnderTest) -> None:
    calls = count_calls(app_env, "GetQueueUrl")
    first = queue_url(app_env.client, app_env.settings.input_queue)
    second = queue_url(app_env.client, app_env.settings.input_queue)
    assert first == second == app_env.queues.input_url
    assert calls == ["GetQueueUrl"]


def test_a_url_is_used_as_is_without_a_call(app_env: AppUnderTest) -> None:
    calls = count_calls(app_env, "GetQueueUrl")
    assert queue_url(app_env.client, app_env.queues.output_url) == app_env.queues.output_url
    assert calls == []


def test_the_app_works_with_urls_in_its_settings(app_env: AppUnderTest) -> None:
    settings = Settings.from_env(
        {
            "SQS_INPUT_QUEUE": app_env.queues.input_url,
            "SQS_OUTPUT_QUEUE": app_env.queues.output_url,
            "AWS_AUTH_MODE": "default_chain",
        }
    )
    client = sqs_client(settings)
    url = queue_url(client, settings.output_queue)
    extra = {"MessageGroupId": "g"} if url.endswith(".fifo") else {}
    client.send_message(QueueUrl=url, MessageBody="by url", **extra)
    received = client.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in received] == ["by url"]
    assert queue_name(url) == app_env.settings.output_queue
