"""The HTTP output and batch functions, called with real func.HttpRequest objects, against SQS."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable

import azure.functions as func
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from mypy_boto3_sqs import SQSClient
from urllib3.response import HTTPResponse

from {{ cookiecutter.package_name }}.engine.aws_session import sqs_client
from {{ cookiecutter.package_name }}.engine.http_io import MAX_BATCH_REQUEST_BYTES, RETRY_AFTER_SECONDS
from {{ cookiecutter.package_name }}.engine.settings import Settings

from .conftest import (
    AppUnderTest,
    MakeQueue,
    count_requests,
    drain_all,
    http_post,
    send_params,
)

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


def test_send_batch_sends_every_item(
    app_env: AppUnderTest, functions: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SQS_MAX_BATCH_ITEMS", "25")  # an anonymous bake's default is 10
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


def fifo_received(client: SQSClient, url: str) -> list[tuple[str, str, str]]:
    """(body, group, deduplication ID) of each message on a FIFO queue, in order."""
    found: list[tuple[str, str, str]] = []
    while messages := client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
    ).get("Messages", []):
        for m in messages:
            attributes = m["Attributes"]
            found.append((m["Body"], attributes["MessageGroupId"], attributes["MessageDeduplicationId"]))
            client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return found


def test_send_message_to_a_fifo_queue_takes_the_group_and_deduplication_id(
    app_env: AppUnderTest,
    functions: Functions,
    make_queue: MakeQueue,
    monkeypatch: pytest.MonkeyPatch,
    anonymous_sends: bool,
) -> None:
    queues = make_queue(fifo=True, content_based_deduplication=False)
    monkeypatch.setenv("SQS_OUTPUT_QUEUE", queues.url)
    params = {"group_id": "orders-42", "deduplication_id": "order-42-created"}

    first = call(functions, "send_message", http_post("messages", b'{"id": "42"}', params))
    again = call(functions, "send_message", http_post("messages", b'{"id": "42", "retry": true}', params))
    no_group = call(functions, "send_message", http_post("messages", b'{"id": "43"}'))

    assert (first.status_code, again.status_code) == (202, 202)
    received = fifo_received(app_env.client, queues.url)
    if anonymous_sends:
        # The caller's group and ID are ignored: each request its own group, named by its content.
        assert no_group.status_code == 202
        assert sorted(body for body, _, _ in received) == [
            '{"id": "42", "retry": true}',
            '{"id": "42"}',
            '{"id": "43"}',
        ]
        assert len({group for _, group, _ in received}) == 3
        assert not {"orders-42", "order-42-created"} & {v for _, g, d in received for v in (g, d)}
    else:
        assert no_group.status_code == 400
        assert json.loads(no_group.get_body())["code"] == "MissingGroupId"
        assert received == [('{"id": "42"}', "orders-42", "order-42-created")]


def test_send_batch_refuses_one_deduplication_id_for_many_messages(
    app_env: AppUnderTest, functions: Functions, anonymous_sends: bool
) -> None:
    # SQS would keep the first and report the rest as sent while dropping them as duplicates.
    params = {**send_params(app_env.settings.output_queue), "deduplication_id": "same"}
    body = json.dumps(["a", "b", "c"]).encode()
    response = call(functions, "send_message_batch", http_post("messages/batch", body, params))

    if anonymous_sends:  # the caller's deduplication_id is ignored: each item gets its own
        assert response.status_code == 200, response.get_body()
        assert sorted(drain_all(app_env.client, app_env.queues.output_url)) == ['"a"', '"b"', '"c"']
        return
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

    # SQS refuses the app itself: the caller can do nothing about it, a retry will not help.
    monkeypatch.setenv("SQS_OUTPUT_QUEUE", "no-such-queue" + (".fifo" if params else ""))
    response = call(functions, name, http_post(route, body, params))
    assert response.status_code == 502
    answer = json.loads(response.get_body())
    assert (answer["code"], answer["retryable"]) == ("AWS.SimpleQueueService.NonExistentQueue", False)


# What SQS refuses of what the caller gave, on a FIFO queue: (what, query, headers, body, SQS's code).
ELEVEN_ATTRIBUTES = {f"X-Message-Attribute-a{n}": "v" for n in range(11)}
CALLERS_INPUT_REFUSED_BY_SQS = [
    ("11 attributes", {}, ELEVEN_ATTRIBUTES, b'{"id": 1}', "InvalidParameterValue"),
    (
        "a reserved attribute name",
        {},
        {"X-Message-Attribute-AWS.trace": "v"},
        b'{"id": 1}',
        "InvalidParameterValue",
    ),
    (
        "an attribute name SQS refuses",
        {},
        {"X-Message-Attribute-a~b": "v"},
        b'{"id": 1}',
        "InvalidParameterValue",
    ),
    ("a group ID with a space", {"group_id": "orders 42"}, {}, b'{"id": 1}', "InvalidParameterValue"),
    ("a long deduplication ID", {"deduplication_id": "d" * 129}, {}, b'{"id": 1}', "InvalidParameterValue"),
    ("a body with U+FFFF", {}, {}, '{"id": "\uffff"}'.encode(), "InvalidMessageContents"),
]


@pytest.mark.parametrize(
    ("what", "query", "headers", "body", "code"),
    CALLERS_INPUT_REFUSED_BY_SQS,
    ids=[case[0] for case in CALLERS_INPUT_REFUSED_BY_SQS],
)
def test_what_sqs_refuses_of_the_callers_input_is_a_400_with_its_code(
    app_env: AppUnderTest,
    functions: Functions,
    make_queue: MakeQueue,
    monkeypatch: pytest.MonkeyPatch,
    anonymous_sends: bool,
    what: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    code: str,
) -> None:
    queues = make_queue(fifo=True)
    monkeypatch.setenv("SQS_OUTPUT_QUEUE", queues.url)
    params = {"group_id": "orders", **query}
    # A deduplication ID names one message: a batch of one.
    items = b"[" + b", ".join([body] * (1 if "deduplication_id" in query else 2)) + b"]"

    single = call(functions, "send_message", http_post("messages", body, params, headers))
    batch = call(functions, "send_message_batch", http_post("messages/batch", items, params, headers))

    if anonymous_sends and query:  # the caller's group and deduplication IDs are ignored
        assert (single.status_code, batch.status_code) == (202, 200), (single.get_body(), batch.get_body())
        return
    # SQS's own message (it may quote the value) stays in the log.
    expected = {"error": "SQS refused the message as given (its body, attributes or IDs)", "code": code}
    assert (single.status_code, json.loads(single.get_body())) == (400, {**expected, "retryable": False})
    if what == "a body with U+FFFF":
        # The batch function writes each item's JSON itself, in ASCII: "\uffff" goes escaped, and is sent.
        assert batch.status_code == 200
        fifo_received(app_env.client, queues.url)
    else:
        assert batch.status_code == 400
        assert json.loads(batch.get_body())["failures"] == [
            {"index": i, "code": code, "retryable": False} for i in range(items.count(b"{"))
        ]
    assert fifo_received(app_env.client, queues.url) == []


def test_a_fifo_batch_without_group_id_is_a_400(
    app_env: AppUnderTest,
    functions: Functions,
    make_queue: MakeQueue,
    monkeypatch: pytest.MonkeyPatch,
    anonymous_sends: bool,
) -> None:
    queues = make_queue(fifo=True)
    monkeypatch.setenv("SQS_OUTPUT_QUEUE", queues.url)

    response = call(functions, "send_message_batch", http_post("messages/batch", b'["a", "b"]'))

    if anonymous_sends:  # the server names the group
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert json.loads(response.get_body())["failures"] == [
        {"index": i, "code": "MissingGroupId", "retryable": False} for i in range(2)
    ]


def sqs_answer(request: AWSPreparedRequest, status: int, document: dict[str, object]) -> AWSResponse:
    """SQS's answer to ``request`` on the wire (JSON protocol), for botocore to parse as if SQS sent it."""
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected"}
    raw = HTTPResponse(
        body=io.BytesIO(json.dumps(document).encode()), status=status, headers=headers, preload_content=False
    )
    return AWSResponse(request.url, status, HTTPHeaders(headers), raw)


def sqs_error_answer(status: int, error_type: str) -> Callable[..., AWSResponse]:
    """A ``before-send`` hook answering with SQS's error: botocore parses it, and retries it, as SQS's."""

    def answer(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        return sqs_answer(request, status, {"__type": error_type, "message": "injected"})

    return answer


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (400, "com.amazon.coral.availability#ThrottlingException", "ThrottlingException"),
        (500, "com.amazonaws.sqs#InternalError", "InternalError"),
        (503, "com.amazonaws.sqs#ServiceUnavailable", "ServiceUnavailable"),
    ],
)
@pytest.mark.parametrize("name", ["send_message", "send_message_batch"])
def test_throttling_and_sqs_failures_are_a_503_with_retry_after(
    app_env: AppUnderTest,
    functions: Functions,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    status: int,
    error_type: str,
    code: str,
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # botocore's retries, kept short
    client = sqs_client(Settings.from_env())  # the functions' client, with these settings
    operation = "SendMessage" if name == "send_message" else "SendMessageBatch"
    sent = count_requests(client, operation)
    hook = sqs_error_answer(status, error_type)
    client.meta.events.register(f"before-send.sqs.{operation}", hook)
    try:
        route = "messages" if name == "send_message" else "messages/batch"
        body = b'{"id": 1}' if name == "send_message" else b'[{"id": 1}, {"id": 2}]'
        response = call(functions, name, http_post(route, body, send_params(app_env.settings.output_queue)))
    finally:
        client.meta.events.unregister(f"before-send.sqs.{operation}", hook)

    assert sent[operation] == 2  # botocore retried first
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    answer = json.loads(response.get_body())
    if name == "send_message":
        assert (answer["code"], answer["retryable"]) == (code, True)
    else:
        assert answer["failures"] == [{"index": i, "code": code, "retryable": True} for i in range(2)]
    assert drain_all(app_env.client, app_env.queues.output_url) == []


def test_a_batch_whose_every_entry_sqs_failed_is_a_503(
    app_env: AppUnderTest, functions: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = app_env.client  # the functions' client
    sent = count_requests(client, "SendMessageBatch")

    # SQS failed every entry on its side (SenderFault false): the sender retries them, then reports them.
    def every_entry_failed(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        entries = json.loads(request.body or b"{}")["Entries"]
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "x"} for e in entries
        ]
        return sqs_answer(request, 200, {"Successful": [], "Failed": failed})

    client.meta.events.register("before-send.sqs.SendMessageBatch", every_entry_failed)
    try:
        body = json.dumps(["a", "b"]).encode()
        params = send_params(app_env.settings.output_queue)
        response = call(functions, "send_message_batch", http_post("messages/batch", body, params))
    finally:
        client.meta.events.unregister("before-send.sqs.SendMessageBatch", every_entry_failed)

    assert sent["SendMessageBatch"] == 3  # the sender's own retries of the failed entries
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert json.loads(response.get_body())["failures"] == [
        {"index": i, "code": "InternalError", "retryable": True} for i in range(2)
    ]


@pytest.mark.parametrize("name", ["send_message", "send_message_batch"])
def test_a_deeply_nested_body_is_a_400_without_a_traceback(
    app_env: AppUnderTest, functions: Functions, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    route = "messages" if name == "send_message" else "messages/batch"
    nested = b"[" * 200_000  # 200 KB: under either function's size limit
    with caplog.at_level(logging.WARNING):
        response = call(functions, name, http_post(route, nested, send_params(app_env.settings.output_queue)))

    assert response.status_code == 400
    assert json.loads(response.get_body())["code"] == "InvalidRequest"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert drain_all(app_env.client, app_env.queues.output_url) == []


def test_a_thousand_item_request_is_refused_when_anyone_may_send(
    app_env: AppUnderTest, functions: Functions, anonymous_sends: bool
) -> None:
    items = json.dumps([{"id": n} for n in range(1_000)]).encode()
    params = send_params(app_env.settings.output_queue)
    response = call(functions, "send_message_batch", http_post("messages/batch", items, params))

    if anonymous_sends:
        # One request is at most one SendMessageBatch's worth: no amplification to 100 calls.
        assert response.status_code == 413
        assert json.loads(response.get_body())["code"] == "TooManyItems"
        assert "SQS_MAX_BATCH_ITEMS" in json.loads(response.get_body())["error"]
        assert drain_all(app_env.client, app_env.queues.output_url) == []
    else:
        assert response.status_code == 200
        assert json.loads(response.get_body())["sent"] == 1_000
