"""The example message model (pydantic): good bodies are handled, bad ones are retried, then dead-lettered.

Against the SQS emulator over HTTP, through the app's real drain and its default handler, with bodies in the
envelope of the message_source ({{ cookiecutter.message_source }}: sample_messages.envelope).
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage
from {{ cookiecutter.package_name }}.engine.queues import is_fifo
from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue
from {{ cookiecutter.package_name }}.handler import InvalidMessage, WorkItem, handle_message
from {{ cookiecutter.package_name }}.ops.local_dev.sample_messages import envelope, good_message, poison_message

from .conftest import AppUnderTest, drain_all, queue_depth

CARD_NUMBER = "4111-1111-1111-1111"


def message(body: str) -> SqsMessage:
    return SqsMessage(message_id="m-1", receipt_handle="r-1", body=body)


def test_the_model_parses_a_good_body_and_fills_defaults() -> None:
    item = WorkItem.from_message(message('{"id": "order-1", "action": "ship"}'))
    assert (item.id, item.action, item.payload) == ("order-1", "ship", {})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "body: Invalid JSON"),
        ('["a list"]', "body: Input should be an object"),
        ('{"id": "o-1", "payload": {}}', "action: Field required"),
        ('{"id": "", "action": "ship"}', "id: String should have at least 1 character"),
        (json.dumps({"id": "o-1", "action": [CARD_NUMBER]}), "action: Input should be a valid string"),
        (
            json.dumps({"id": "o-1", "action": "ship", "payload": CARD_NUMBER}),
            "payload: Input should be an object",
        ),
    ],
)
def test_a_bad_body_is_refused_naming_the_field_and_never_quoting_the_body(body: str, reason: str) -> None:
    with pytest.raises(InvalidMessage) as refused:
        WorkItem.from_message(message(body))
    assert str(refused.value).startswith("message m-1 is not a valid WorkItem: ")
    assert reason in str(refused.value)
    assert CARD_NUMBER not in str(refused.value)
    # The consumer logs the traceback: no chained ValidationError may carry the input into it.
    assert refused.value.__cause__ is None
    assert refused.value.__suppress_context__


def test_the_sample_and_poison_messages_agree_with_the_handler() -> None:
    handle_message(message(good_message("run", 1)))  # taken
    with pytest.raises(ValueError, match="{{ 'key: String should match pattern' if cookiecutter.message_source == 's3' else 'action: Field required' }}"):
        handle_message(message(poison_message("run", 1)))


def test_an_invalid_body_is_retried_then_dead_lettered_with_its_errors_logged(
    app_env: AppUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    client, queues = app_env.client, app_env.queues
{%- if cookiecutter.message_source == "s3" %}
    # An object the handler's OrderFile refuses (not .json), its key holding what the logs must not.
    bad, good = envelope(f"incoming/{CARD_NUMBER}.txt"), envelope("incoming/order-8.json")
    refused = "is not a valid OrderFile (Records.0): key: String should match pattern"
{%- else %}
    bad = envelope(json.dumps({"id": "order-7", "action": {"card": CARD_NUMBER}}))
    good = envelope(json.dumps({"id": "order-8", "action": "ship"}))
    refused = {{ {"http": "is not a valid WorkItem: action", "sns": "is not a valid SNS notification of WorkItem: Message.action", "eventbridge": "is not a valid EventBridge event of WorkItem: detail.action"}[cookiecutter.message_source] | tojson }}
    refused += ": Input should be a valid string"
{%- endif %}
    for body in (bad, good):  # on FIFO in groups of their own, so the good one is not held behind the bad
        fifo = {"MessageGroupId": uuid.uuid4().hex, "MessageDeduplicationId": uuid.uuid4().hex}
        client.send_message(
            QueueUrl=queues.input_url, MessageBody=body, **(fifo if is_fifo(queues.input_url) else {})
        )
    caplog.set_level(logging.WARNING, logger="{{ cookiecutter.package_name }}")

    summaries = []
    for _ in range(app_env.settings.max_receive_count + 3):  # the default handler: handler.py's
        summaries.append(drain_input_queue())
        if queue_depth(client, queues.input_url).backlog == 0:
            break

    assert sum(s.succeeded for s in summaries) == 1
    assert sum(s.failed for s in summaries) == app_env.settings.max_receive_count
    assert drain_all(client, queues.dlq_url) == [bad]
    assert queue_depth(client, queues.input_url).backlog == 0
    failures = [r for r in caplog.records if "failed on attempt" in r.getMessage()]
    assert len(failures) == app_env.settings.max_receive_count
    logged = caplog.text
    assert refused in logged
    assert CARD_NUMBER not in logged
