"""Your business logic: what to do with one message from the input queue.

Raise to fail a message: it is retried with backoff and, after the queue's
``maxReceiveCount`` receives, moved to the DLQ. Return to succeed: it is deleted.
A body that is not JSON or does not fit ``WorkItem`` fails the same way.

This module loads at the first drain, not when the host indexes ``function_app``,
so pydantic (and whatever your handler imports) costs nothing at cold start.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .engine.consumer import SqsMessage
{%- if cookiecutter.message_source == "sns" %}
from .engine.envelopes import SnsNotification, from_sns
{%- elif cookiecutter.message_source == "s3" %}
from .engine.envelopes import S3Object, from_s3
{%- elif cookiecutter.message_source == "eventbridge" %}
from .engine.envelopes import EventBridgeEvent, from_eventbridge
{%- endif %}

logger = logging.getLogger(__name__)


class InvalidMessage(ValueError):
    """The body does not fit the model; retrying will not help, so it ends in the DLQ."""


class WorkItem(BaseModel):
    """The example message model: {"id": "...", "action": "...", "payload": {...}}."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    action: str = Field(min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_message(cls, message: SqsMessage) -> WorkItem:
        """The body parsed and validated; ``InvalidMessage`` names what is wrong, never the body."""
        try:
            return cls.model_validate_json(message.body)
        except ValidationError as error:
            # ``from None``: the ValidationError's own text quotes the input, and the consumer
            # logs the traceback. A body can be 1 MiB, or hold personal data; its message ID
            # finds it in the DLQ.
            raise InvalidMessage(
                f"message {message.message_id} is not a valid {cls.__name__}: {describe(error)}"
            ) from None


def describe(error: ValidationError) -> str:
    """Each error's field path and reason, without the input values."""
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    return "; ".join(f"{'.'.join(map(str, p['loc'])) or 'body'}: {p['msg']}" for p in problems)


{%- if cookiecutter.message_source == "http" %}


def handle_message(message: SqsMessage) -> None:
    item = WorkItem.from_message(message)
    logger.info(
        "processed work item %s (action %s) from message %s, receive %d",
        item.id,
        item.action,
        message.message_id,
        message.receive_count,
    )
{%- elif cookiecutter.message_source == "sns" %}


# The queue carries an SNS topic's notifications; each one's Message is a WorkItem (engine/envelopes.py).
@from_sns(WorkItem)
def handle_message(notification: SnsNotification[WorkItem], message: SqsMessage) -> None:
    item = notification.message
    logger.info(
        "processed work item %s (action %s) from SNS message %s of %s, receive %d",
        item.id,
        item.action,
        notification.message_id,
        notification.topic_arn,
        message.receive_count,
    )
{%- elif cookiecutter.message_source == "s3" %}


class OrderFile(S3Object):
    """The objects this queue announces: JSON order files under incoming/ (keys arrive decoded)."""

    key: str = Field(pattern=r"^incoming/.+\.json$")


# The queue carries a bucket's S3 event notifications; the handler runs once per record, and S3's test
# event is acknowledged without it. Make it idempotent per object (OrderFile.identity): when one record
# of a message fails, the message is retried, and the records before it run again.
@from_s3(OrderFile)
def handle_message(file: OrderFile, message: SqsMessage) -> None:
    logger.info(
        "order file s3://%s/%s (%s bytes, %s) from message %s, receive %d",
        file.bucket,
        file.key,
        file.size,
        file.event_name,
        message.message_id,
        message.receive_count,
    )
{%- elif cookiecutter.message_source == "eventbridge" %}


# The queue carries an EventBridge rule's events; each one's detail is a WorkItem (engine/envelopes.py).
@from_eventbridge(WorkItem)
def handle_message(event: EventBridgeEvent[WorkItem], message: SqsMessage) -> None:
    item = event.detail
    logger.info(
        "processed work item %s (action %s) from event %s (%s, %s), receive %d",
        item.id,
        item.action,
        event.id,
        event.source,
        event.detail_type,
        message.receive_count,
    )
{%- endif %}
