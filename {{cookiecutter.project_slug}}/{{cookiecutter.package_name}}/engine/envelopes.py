"""Typed payloads out of the envelopes of what usually feeds SQS: SNS fan-out, S3 event notifications and
EventBridge rules. Each decorator turns a handler of the owner's own payload model into a handler of
``SqsMessage``s, the kind the drain runs:

    @from_sns(Order)              # handler(notification: SnsNotification[Order], message)
    @from_eventbridge(OrderPlaced)  # handler(event: EventBridgeEvent[OrderPlaced], message)
    @from_s3(OrderFile)           # handler(file: OrderFile, message), OrderFile a subclass of S3Object

An envelope or payload that does not fit raises ``InvalidEnvelope`` (a ``ValueError``), naming each field
and what is wrong, never a value: the message fails like any invalid body (retried, then dead-lettered).

- SNS (without raw message delivery): the body is SNS's notification; its ``Message`` string is the
  payload, parsed as JSON into the model. A ``Type`` other than ``Notification`` fails.
- S3: keys arrive URL-encoded (``+`` for a space, ``%C3%AB`` for ``ë``); ``S3Object.key`` is decoded. The
  ``s3:TestEvent`` S3 sends when a notification is set up is acknowledged (deleted) without the handler.
  One message may carry several records: the handler runs once per record, in order, and the first
  record that fails fails the message. SQS then redelivers the whole message, so the records before it
  run again: make the handler idempotent per object (``S3Object.identity``: bucket, key and sequencer).
- EventBridge: the body is the event; ``detail`` is the payload.

Models are pydantic's (the app's dependency already); they read only the envelope fields they name, so a
field AWS adds later never fails a message. AWS Lambda Powertools' parser models were measured and not
taken (docs/message-sources.md says why).
"""
{% if cookiecutter.python_version != "3.11" %}
# ruff: noqa: UP046, UP047 (Generic and TypeVar: the bakes for Python 3.11 cannot use type parameters)
{%- endif %}
from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError
from pydantic.alias_generators import to_camel

from .consumer import SqsMessage

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
ObjectT = TypeVar("ObjectT", bound="S3Object")
Result = Awaitable[None] | None
S3_TEST_EVENT = "s3:TestEvent"


class InvalidEnvelope(ValueError):
    """The body is no envelope of the declared kind, or its payload does not fit the model."""


def describe(error: ValidationError) -> str:
    """Each error's field path and reason, without the input values (a body may hold personal data)."""
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    return "; ".join(f"{'.'.join(map(str, p['loc'])) or 'body'}: {p['msg']}" for p in problems)


def _invalid(message: SqsMessage, what: str, error: ValidationError) -> InvalidEnvelope:
    return InvalidEnvelope(f"message {message.message_id} is not a valid {what}: {describe(error)}")


class SnsAttribute(BaseModel):
    type: str = Field(alias="Type")
    value: str = Field(alias="Value")


class SnsNotification(BaseModel, Generic[T]):
    """An SNS notification as SQS receives it (raw message delivery off), its ``message`` typed."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    type: Literal["Notification"] = Field(alias="Type")
    message_id: str = Field(alias="MessageId")
    topic_arn: str = Field(alias="TopicArn")
    subject: str | None = Field(default=None, alias="Subject")
    timestamp: datetime = Field(alias="Timestamp")
    message: Json[T] = Field(alias="Message")
    message_attributes: dict[str, SnsAttribute] = Field(default_factory=dict, alias="MessageAttributes")


class EventBridgeEvent(BaseModel, Generic[T]):
    """An EventBridge event as a rule's SQS target receives it, its ``detail`` typed."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    version: str
    id: str
    detail_type: str = Field(alias="detail-type")
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str] = Field(default_factory=list)
    detail: T


class S3Object(BaseModel):
    """One record of an S3 event notification: the object and what happened to it, its key decoded.
    Subclass it to say which objects the queue carries (a key pattern, a size bound)."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_name: str
    event_time: datetime
    region: str

    @property
    def identity(self) -> str:
        """What tells this object version's event apart: a key for idempotency."""
        return f"{self.bucket}/{self.key}@{self.sequencer or self.etag or self.event_time.isoformat()}"


class _S3Bucket(BaseModel):
    name: str


class _S3ObjectFields(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    key: str
    size: int | None = None
    e_tag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None


class _S3Entity(BaseModel):
    bucket: _S3Bucket
    object: _S3ObjectFields


class _S3Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    event_name: str
    event_time: datetime
    aws_region: str
    s3: _S3Entity


class _S3Event(BaseModel):
    records: list[_S3Record] = Field(alias="Records", min_length=1)


def parse_sns(message: SqsMessage, model: type[T]) -> SnsNotification[T]:
    try:
        return SnsNotification[model].model_validate_json(message.body)  # type: ignore[valid-type]
    except ValidationError as error:
        raise _invalid(message, f"SNS notification of {model.__name__}", error) from None


def parse_eventbridge(message: SqsMessage, model: type[T]) -> EventBridgeEvent[T]:
    try:
        return EventBridgeEvent[model].model_validate_json(message.body)  # type: ignore[valid-type]
    except ValidationError as error:
        raise _invalid(message, f"EventBridge event of {model.__name__}", error) from None


def is_s3_test_event(message: SqsMessage) -> bool:
    try:
        document = json.loads(message.body)
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("Event") == S3_TEST_EVENT


def parse_s3(message: SqsMessage, model: type[ObjectT]) -> list[ObjectT]:
    """The records of an S3 event notification as ``model``s, keys decoded."""
    try:
        event = _S3Event.model_validate_json(message.body)
    except ValidationError as error:
        raise _invalid(message, "S3 event notification", error) from None
    objects = []
    for index, record in enumerate(event.records):
        fields = record.s3.object
        try:
            objects.append(
                model(
                    bucket=record.s3.bucket.name,
                    # S3 encodes keys as an HTML form does: '+' is a space, %XX UTF-8 bytes.
                    key=unquote_plus(fields.key),
                    size=fields.size,
                    etag=fields.e_tag,
                    version_id=fields.version_id,
                    sequencer=fields.sequencer,
                    event_name=record.event_name,
                    event_time=record.event_time,
                    region=record.aws_region,
                )
            )
        except ValidationError as error:
            what = f"{model.__name__} (Records.{index})"
            raise _invalid(message, what, error) from None
    return objects


def _then(result: Any, after: Callable[[], Result]) -> Result:
    """Runs ``after`` once ``result`` is done: at once for a plain value, else when it is awaited."""
    if not inspect.isawaitable(result):
        return after()

    async def chained() -> None:
        await result
        next_step = after()
        if next_step is not None:
            await next_step

    return chained()


def from_sns(
    model: type[T],
) -> Callable[[Callable[[SnsNotification[T], SqsMessage], Result]], Callable[[SqsMessage], Result]]:
    """A handler of SNS notifications whose ``Message`` is a ``model`` (JSON)."""

    def decorate(
        handler: Callable[[SnsNotification[T], SqsMessage], Result],
    ) -> Callable[[SqsMessage], Result]:
        @functools.wraps(handler)
        def handle(message: SqsMessage) -> Result:
            return handler(parse_sns(message, model), message)

        return handle

    return decorate


def from_eventbridge(
    model: type[T],
) -> Callable[[Callable[[EventBridgeEvent[T], SqsMessage], Result]], Callable[[SqsMessage], Result]]:
    """A handler of EventBridge events whose ``detail`` is a ``model``."""

    def decorate(
        handler: Callable[[EventBridgeEvent[T], SqsMessage], Result],
    ) -> Callable[[SqsMessage], Result]:
        @functools.wraps(handler)
        def handle(message: SqsMessage) -> Result:
            return handler(parse_eventbridge(message, model), message)

        return handle

    return decorate


def from_s3(
    model: type[ObjectT],
) -> Callable[[Callable[[ObjectT, SqsMessage], Result]], Callable[[SqsMessage], Result]]:
    """A handler of S3 event notifications, called once per record, in order, with a ``model``."""

    def decorate(handler: Callable[[ObjectT, SqsMessage], Result]) -> Callable[[SqsMessage], Result]:
        @functools.wraps(handler)
        def handle(message: SqsMessage) -> Result:
            if is_s3_test_event(message):
                logger.info("message %s is S3's test event: acknowledged, not handled", message.message_id)
                return None
            return _each(parse_s3(message, model), message)

        def _each(objects: list[ObjectT], message: SqsMessage) -> Result:
            if not objects:
                return None
            first, rest = objects[0], objects[1:]
            return _then(handler(first, message), lambda: _each(rest, message))

        return handle

    return decorate
