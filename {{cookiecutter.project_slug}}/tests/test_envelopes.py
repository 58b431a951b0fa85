"""Typed envelopes (engine/envelopes.py) on AWS's documented shapes: an S3 ObjectCreated notification whose
key holds spaces and unicode, S3's test event, an SNS notification as SQS receives it, EventBridge events.
Each is parsed into a model and handled by the real consumer on the emulator; a broken one is retried, then
dead-lettered, its error naming the field and not the value."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest
from pydantic import BaseModel, Field

from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage
from {{ cookiecutter.package_name }}.engine.envelopes import (
    EventBridgeEvent,
    InvalidEnvelope,
    S3Object,
    SnsNotification,
    from_eventbridge,
    from_s3,
    from_sns,
    parse_eventbridge,
    parse_s3,
    parse_sns,
)
from {{ cookiecutter.package_name }}.ops.local_dev.source_events import (
    eventbridge_event,
    s3_notification,
    s3_test_event,
    sns_notification,
)

from .conftest import AppUnderTest, MakeQueue, drain_all
from .test_consumer import FAST, drain_until_empty, send

KEY = "incoming/2026 orders/Zoë's order #1.json"
PERSONAL = "4111-1111-1111-1111"


class Order(BaseModel):
    id: str = Field(min_length=1)
    amount: int = Field(ge=0)


class OrderFile(S3Object):
    key: str = Field(pattern=r"^incoming/.+\.json$")


class StateChange(BaseModel):
    """The detail of EventBridge's documented EC2 sample."""

    instance_id: str = Field(alias="instance-id")
    state: str


def message(body: str, message_id: str = "m-1") -> SqsMessage:
    return SqsMessage(message_id=message_id, receipt_handle="r", body=body)


def test_the_documented_s3_notification_gives_the_key_decoded() -> None:
    body = s3_notification("amzn-s3-demo-bucket", KEY)
    assert "Zo%C3%AB%27s+order+%231.json" in body  # as S3 sends it

    [file] = parse_s3(message(body), OrderFile)

    assert (file.bucket, file.key, file.size) == ("amzn-s3-demo-bucket", KEY, 1024)
    assert file.event_name == "ObjectCreated:Put"
    assert file.identity.startswith(f"amzn-s3-demo-bucket/{KEY}@")


def test_a_plus_in_a_key_is_a_space_and_a_literal_plus_arrives_as_2b() -> None:
    body = json.loads(s3_notification("b", "x"))
    body["Records"][0]["s3"]["object"]["key"] = "a+b%2Bc.json"
    [file] = parse_s3(message(json.dumps(body)), S3Object)
    assert file.key == "a b+c.json"


def test_the_documented_sns_notification_gives_its_message_as_the_model() -> None:
    body = sns_notification("MyTopic", json.dumps({"id": "o-1", "amount": 42}), subject="test")

    notification = parse_sns(message(body), Order)

    assert notification.message == Order(id="o-1", amount=42)
    assert notification.topic_arn.endswith(":MyTopic")
    assert notification.subject == "test"
    assert notification.message_attributes["origin"].value == "smoke"


def test_the_documented_eventbridge_event_gives_its_detail_as_the_model() -> None:
    # AWS's own sample event (EventBridge User Guide, "Amazon EventBridge events").
    body = json.dumps(
        {
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "account": "111122223333",
            "time": "2017-12-22T18:43:48Z",
            "region": "us-west-1",
            "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
            "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"},
        }
    )

    event = parse_eventbridge(message(body), StateChange)

    assert (event.source, event.detail_type, event.detail.state) == (
        "aws.ec2",
        "EC2 Instance State-change Notification",
        "terminated",
    )


@pytest.mark.parametrize(
    ("parse", "body", "field"),
    [
        (
            lambda m: parse_sns(m, Order),
            sns_notification("t", json.dumps({"id": PERSONAL, "amount": -1})),
            "Message.amount",
        ),
        (
            lambda m: parse_sns(m, Order),
            json.dumps({"Type": "Notification", "Message": PERSONAL}),
            "MessageId",
        ),
        (
            lambda m: parse_eventbridge(m, Order),
            eventbridge_event("s", "d", {"id": PERSONAL}),
            "detail.amount",
        ),
        (lambda m: parse_s3(m, OrderFile), s3_notification("b", f"elsewhere/{PERSONAL}.json"), "key"),
        (lambda m: parse_s3(m, OrderFile), json.dumps({"Records": [], "card": PERSONAL}), "Records"),
        (lambda m: parse_s3(m, OrderFile), PERSONAL, "body"),
    ],
    ids=["sns-payload", "sns-envelope", "eventbridge-detail", "s3-key-pattern", "s3-no-records", "not-json"],
)
def test_an_invalid_envelope_or_payload_names_the_field_not_the_value(
    parse: Any, body: str, field: str
) -> None:
    with pytest.raises(InvalidEnvelope) as raised:
        parse(message(body, "m-broken"))
    text = str(raised.value)
    assert "m-broken" in text
    assert field in text
    assert PERSONAL not in text
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def sources(bucket: str) -> dict[str, tuple[Any, list[str], str]]:
    """For each kind: the handler-making decorator, good bodies, and one broken body."""
    good_orders = [json.dumps({"id": f"o-{n}", "amount": n}) for n in range(3)]
    return {
        "sns": (
            from_sns(Order),
            [sns_notification("orders", order) for order in good_orders],
            sns_notification("orders", json.dumps({"id": "broken"})),
        ),
        "eventbridge": (
            from_eventbridge(Order),
            [eventbridge_event("shop", "OrderPlaced", json.loads(order)) for order in good_orders],
            eventbridge_event("shop", "OrderPlaced", {"amount": 1}),
        ),
        "s3": (
            from_s3(OrderFile),
            [s3_notification(bucket, f"incoming/{n} Zoë.json") for n in range(3)] + [s3_test_event(bucket)],
            s3_notification(bucket, "not-incoming.json"),
        ),
    }


@pytest.mark.slow  # drains
@pytest.mark.parametrize("kind", ["sns", "eventbridge", "s3"])
def test_each_kind_is_handled_by_the_consumer_and_a_broken_one_goes_to_the_dlq(
    app_env: AppUnderTest, make_queue: MakeQueue, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    queues = make_queue(max_receive_count=2)
    decorate, good, broken = sources("orders-bucket")[kind]
    handled: list[Any] = []
    lock = threading.Lock()

    @decorate
    def handler(payload: Any, message: SqsMessage) -> None:
        with lock:
            handled.append(payload)

    send(app_env.client, queues.url, [*good, broken])
    with caplog.at_level(logging.WARNING):
        summaries = drain_until_empty(app_env.client, queues.url, handler, FAST)

    if kind == "s3":
        assert sorted(p.key for p in handled) == [f"incoming/{n} Zoë.json" for n in range(3)]
    elif kind == "sns":
        assert sorted(p.message.id for p in handled) == ["o-0", "o-1", "o-2"]
        assert all(isinstance(p, SnsNotification) for p in handled)
    else:
        assert sorted(p.detail.id for p in handled) == ["o-0", "o-1", "o-2"]
        assert all(isinstance(p, EventBridgeEvent) for p in handled)
    # The good ones and S3's test event are deleted; the broken one fails twice, then SQS dead-letters it.
    assert sum(s.deleted for s in summaries) == len(good)
    assert drain_all(app_env.client, queues.dlq_url) == [broken]
    failures = [r for r in caplog.records if "failed on attempt" in r.getMessage()]
    assert len(failures) == 2
    assert "InvalidEnvelope" in (failures[0].exc_text or "")


@pytest.mark.slow  # drains
def test_one_s3_message_with_several_records_fails_whole_and_runs_them_all_again(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    """The documented partial-failure rule: the first failing record fails the message; on its retry the
    records before it run again (hence S3Object.identity for idempotency)."""
    queues = make_queue(max_receive_count=3)
    keys = ["incoming/a.json", "incoming/b.json", "incoming/c.json"]
    calls: list[tuple[str, int]] = []

    @from_s3(OrderFile)
    def handler(file: OrderFile, message: SqsMessage) -> None:
        calls.append((file.key, message.receive_count))
        if file.key.endswith("b.json") and message.receive_count == 1:
            raise RuntimeError("b fails once")

    send(app_env.client, queues.url, [s3_notification("bucket", *keys)])
    drain_until_empty(app_env.client, queues.url, handler, FAST)

    assert calls == [
        ("incoming/a.json", 1),
        ("incoming/b.json", 1),  # c never ran on the first receive
        ("incoming/a.json", 2),
        ("incoming/b.json", 2),
        ("incoming/c.json", 2),
    ]


def test_an_async_handler_gets_every_record_in_order() -> None:
    import asyncio

    seen: list[str] = []

    @from_s3(S3Object)
    async def handler(file: S3Object, message: SqsMessage) -> None:
        await asyncio.sleep(0)
        seen.append(file.key)

    result = handler(message(s3_notification("b", "1", "2", "3")))
    assert result is not None
    asyncio.run(result)  # type: ignore[arg-type]
    assert seen == ["1", "2", "3"]
