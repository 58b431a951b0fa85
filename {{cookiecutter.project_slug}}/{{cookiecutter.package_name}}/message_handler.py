"""Your business logic: what to do with one message from the input queue.

Raise to fail a message: it is retried with backoff and, after the queue's
``maxReceiveCount`` receives, moved to the DLQ. Return to succeed: it is deleted.
A body that is not JSON or does not fit ``WorkItem`` fails the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .consumer import SqsMessage

logger = logging.getLogger(__name__)


class InvalidMessage(ValueError):
    """The body does not fit the model; retrying will not help, so it ends in the DLQ."""


@dataclass(frozen=True)
class WorkItem:
    """The example message model: {"id": "...", "action": "...", "payload": {...}}."""

    id: str
    action: str
    payload: dict[str, Any]

    @classmethod
    def from_json(cls, data: Any) -> WorkItem:
        if not isinstance(data, dict):
            raise InvalidMessage(f"expected a JSON object, got {type(data).__name__}")
        missing = [key for key in ("id", "action") if not isinstance(data.get(key), str) or not data[key]]
        if missing:
            raise InvalidMessage(f"missing or empty string field(s): {', '.join(missing)}")
        payload = data.get("payload", {})
        if not isinstance(payload, dict):
            raise InvalidMessage("payload must be a JSON object")
        return cls(id=data["id"], action=data["action"], payload=payload)


def handle_message(message: SqsMessage) -> None:
    try:
        item = WorkItem.from_json(message.json())
    except ValueError as error:  # json.JSONDecodeError is a ValueError too
        raise InvalidMessage(f"message {message.message_id}: {error}") from error
    logger.info(
        "processed work item %s (action %s) from message %s, receive %d",
        item.id,
        item.action,
        message.message_id,
        message.receive_count,
    )
