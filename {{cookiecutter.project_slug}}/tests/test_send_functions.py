"""The HTTP output and batch functions, called with real func.HttpRequest objects, against SQS."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import azure.functions as func
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from {{ cookiecutter.package_name }}.engine.http_io import MAX_BATCH_REQUEST_BYTES

from .conftest import AppUnderTest, MakeQueue, drain_all, http_post, send_params

pytestmark = pytest.mark.slow

Functions = dict[str, Callable[..., object]]


def call(functions: Functions, name: str, request: func.HttpRequest) -> func.HttpResponse:
    response = functions[name](request)
    assert isinstance(response, func.HttpResponse)
    return response


def test_send_message_puts_the_json_body_on_the_output_queue(
    app_env: AppUnderTest, functions: Functions
) -> None:
    body = b'{"id": "order-1", "action": "ship", "payload": {"qty": 2}}'
    params = send_params(app_env.settings.output_queue)
    response = call(functions, "send_message", http_post("messages", body, params))

    assert response.status_code == 202, response.get_body()
    message_id = json.loads(response.get_body())["message_id"]
    messages = app_env.client.receive_message(
        QueueUrl=app_env.queues.output_url, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert [(m["MessageId"], m["Body"]) for m in messages] == [(message_id, body.decode())]


def test_send_message_refuses_invalid_json_and_sends_nothing(
    app_env: AppUnderTest, functions: Functions
) -> None:
    response = call(functions, "send_message", http_post("messages", b"{not json"))

    assert response.status_code == 400
    assert "JSON" in json.loads(response.get_body())["error"]
    assert drain_all(app_env.client, app_env.queues.output_url) == []


def test_send_message_refuses_an_oversized_body_before_calling_sqs(
    app_env: AppUnderTest, functions: Functions
) -> None:
    body = json.dumps("x" * app_env.settings.max_message_bytes).encode()
    params = send_params(app_env.settings.output_queue)
    response = call(functions, "send_message", http_post("messages", body, params))

    assert response.status_code == 413
    assert "SQS_MAX_MESSAGE_BYTES" in json.loads(response.get_body())["error"]
    assert drain_all(app_env.client, app_env.queues.output_url) == []


def test_send_batch_sends_every_item(app_env: AppUnderTest, functions: Functions) -> None:
    items = [{"id": f"item-{i}", "action": "count", "payload": {"i": i}} for i in range(25)]
    params = send_params(app_env.settings.output_queue)
    response = call(
        functions, "send_message_batch", http_post("messages/batch", json.dumps(items).encode(), params)
    )

    assert response.status_code == 200, response.get_body()
    result = json.loads(response.get_body())
    assert (result["sent"], result["failed"], result["failures"]) == (25, 0, [])
    received = drain_all(app_env.client, app_env.queues.output_url)
    assert sorted(json.loads(b)["id"] for b in received) == sorted(i["id"] for i in items)


def test_send_batch_reports_an_oversized_item_and_sends_the_rest(
    app_env: AppUnderTest, functions: Functions
) -> None:
    items = ["small-0", "x" * app_env.settings.max_message_bytes, "small-2"]
    params = send_params(app_env.settings.output_queue)
    response = call(
        functions, "send_message_batch", http_post("messages/batch", json.dumps(items).encode(), params)
    )

    assert response.status_code == 207
    result = json.loads(response.get_body())
    assert (result["sent"], result["failed"]) == (2, 1)
    assert result["failures"][0]["index"] == 1
    assert result["failures"][0]["code"] == "MessageTooLarge"
    assert result["message_ids"][1] is None
    assert sorted(drain_all(app_env.client, app_env.queues.output_url)) == ['"small-0"', '"small-2"']


def test_a_batch_refused_by_sqs_answers_its_code_and_no_account_role_or_queue_arn(
    app_env: AppUnderTest, functions: Functions
) -> None:
    arn = "arn:aws:sts::123456789012:assumed-role/app-role/session"
    queue = "arn:aws:sqs:us-east-1:123456789012:output"

    # As with a role that lacks sqs:SendMessage: the real client gets SQS's error answer.
    def access_denied(**_: object) -> tuple[AWSResponse, dict[str, object]]:
        message = f"User: {arn} is not authorized to perform: sqs:sendmessage on resource: {queue}"
        error = {"Code": "AccessDenied", "Message": message}
        parsed = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}
        return AWSResponse("https://sqs", 403, HTTPHeaders(), None), parsed

    app_env.client.meta.events.register("before-call.sqs.SendMessageBatch", access_denied)
    try:
        body = json.dumps(["a", "b"]).encode()
        params = send_params(app_env.settings.output_queue)
        response = call(functions, "send_message_batch", http_post("messages/batch", body, params))
    finally:
        app_env.client.meta.events.unregister("before-call.sqs.SendMessageBatch", access_denied)

    text = response.get_body().decode()
    assert response.status_code == 502
    assert json.loads(text)["failures"] == [
        {"index": 0, "code": "AccessDenied", "retryable": False},
        {"index": 1, "code": "AccessDenied", "retryable": False},
    ]
    assert not re.search(r"arn:|\d{12}", text)


@pytest.mark.parametrize(
    ("name", "limit"), [("send_message", "SQS_MAX_MESSAGE_BYTES"), ("send_message_batch", "largest size")]
)
def test_a_body_above_the_stated_size_gets_413_before_it_is_parsed(
    app_env: AppUnderTest, functions: Functions, name: str, limit: str
) -> None:
    route = "messages" if name == "send_message" else "messages/batch"
    largest = app_env.settings.max_message_bytes if name == "send_message" else MAX_BATCH_REQUEST_BYTES
    not_json = b"{" * (largest + 1)  # parsing it would answer 400
    response = call(functions, name, http_post(route, not_json, send_params(app_env.settings.output_queue)))

    assert response.status_code == 413
    assert limit in json.loads(response.get_body())["error"]
    assert drain_all(app_env.client, app_env.queues.output_url) == []


def test_send_batch_refuses_malformed_requests(app_env: AppUnderTest, functions: Functions) -> None:
    too_many = json.dumps(list(range(app_env.settings.max_batch_items + 1))).encode()
    cases = {b"[]": 400, b'{"not": "a list"}': 400, b"[1, 2": 400, too_many: 413}
    for body, expected in cases.items():
        response = call(functions, "send_message_batch", http_post("messages/batch", body))
        assert response.status_code == expected, (body[:20], response.get_body())
        assert json.loads(response.get_body())["error"]
    assert drain_all(app_env.client, app_env.queues.output_url) == []


def test_send_message_carries_message_attributes_and_a_delay(
    app_env: AppUnderTest, functions: Functions, make_queue: MakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    queues = make_queue()
    monkeypatch.setenv("SQS_OUTPUT_QUEUE", queues.url)
    body = b'{"id": "now", "action": "wait"}'
    # The longest delay SQS allows: it cannot run out while the test looks.
    delayed = call(functions, "send_message", http_post("messages", body, params={"delay_seconds": "900"}))
    tagged = call(
        functions,
        "send_message",
        http_post("messages", body, headers={"X-Message-Attribute-Tenant": "contoso"}),
    )

    assert (delayed.status_code, tagged.status_code) == (202, 202)
    depth = app_env.client.get_queue_attributes(
        QueueUrl=queues.url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert depth["ApproximateNumberOfMessagesDelayed"] == "1"
    [message] = app_env.client.receive_message(
        QueueUrl=queues.url, WaitTimeSeconds=1, MessageAttributeNames=["All"]
    )["Messages"]
    # HTTP header names are case-insensitive: the attribute name arrives in lower case.
    assert message["MessageAttributes"]["tenant"] == {"DataType": "String", "StringValue": "contoso"}


def test_send_message_to_a_fifo_queue_takes_the_group_and_deduplication_id(
    app_env: AppUnderTest, functions: Functions, make_queue: MakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    queues = make_queue(fifo=True, content_based_deduplication=False)
    monkeypatch.setenv("SQS_OUTPUT_QUEUE", queues.url)
    params = {"group_id": "orders-42", "deduplication_id": "order-42-created"}

    first = call(functions, "send_message", http_post("messages", b'{"id": "42"}', params))
    again = call(functions, "send_message", http_post("messages", b'{"id": "42", "retry": true}', params))
    no_group = call(functions, "send_message", http_post("messages", b'{"id": "43"}'))

    assert (first.status_code, again.status_code) == (202, 202)
    assert no_group.status_code == 400
    assert "group" in json.loads(no_group.get_body())["error"]
    messages = app_env.client.receive_message(
        QueueUrl=queues.url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert [(m["Body"], m["Attributes"]["MessageGroupId"]) for m in messages] == [
        ('{"id": "42"}', "orders-42")
    ]


def test_send_batch_refuses_one_deduplication_id_for_many_messages(
    app_env: AppUnderTest, functions: Functions
) -> None:
    # SQS would keep the first and report the rest as sent while dropping them as duplicates.
    params = {**send_params(app_env.settings.output_queue), "deduplication_id": "same"}
    body = json.dumps(["a", "b", "c"]).encode()
    response = call(functions, "send_message_batch", http_post("messages/batch", body, params))

    assert response.status_code == 400
    assert "deduplication_id" in json.loads(response.get_body())["error"]
    assert drain_all(app_env.client, app_env.queues.output_url) == []


@pytest.mark.parametrize("name", ["send_message", "send_message_batch"])
def test_malformed_options_and_bodies_are_bad_requests(
    app_env: AppUnderTest, functions: Functions, name: str
) -> None:
    route = "messages" if name == "send_message" else "messages/batch"
    params = send_params(app_env.settings.output_queue)
    cases = [
        (json.dumps(["x"]).encode(), {**params, "delay_seconds": "\u00b2"}),  # "²" passes str.isdigit()
        (json.dumps(["x"]).encode("utf-16"), params),  # JSON, but not UTF-8
    ]
    for body, query in cases:
        response = call(functions, name, http_post(route, body, query))
        assert response.status_code == 400, (query, response.get_body())
    assert drain_all(app_env.client, app_env.queues.output_url) == []


@pytest.mark.parametrize("name", ["send_message", "send_message_batch"])
def test_a_missing_setting_is_a_server_error_and_a_missing_queue_a_bad_gateway(
    app_env: AppUnderTest, functions: Functions, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    route = "messages" if name == "send_message" else "messages/batch"
    body = json.dumps(["x"]).encode()
    params = send_params(app_env.settings.output_queue)

    monkeypatch.delenv("SQS_OUTPUT_QUEUE")
    response = call(functions, name, http_post(route, body, params))
    assert response.status_code == 500
    assert "misconfigured" in json.loads(response.get_body())["error"]

    monkeypatch.setenv("SQS_OUTPUT_QUEUE", "no-such-queue" + (".fifo" if params else ""))
    response = call(functions, name, http_post(route, body, params))
    assert response.status_code == 502
    assert "retry later" in json.loads(response.get_body())["error"]
