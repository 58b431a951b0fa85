"""What a handler is given (``SqsMessage``) and what a handler is (sync or async)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef


@dataclass(frozen=True)
class SqsMessage:
    """One received message, as the handler sees it."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    message_attributes: Mapping[str, MessageAttributeValueOutputTypeDef] = field(default_factory=dict)
    # FIFO: attempts SQS did not count: retries inside this pass and, from the attempt
    # ledger, inside earlier ones (see dead_lettering.py and attempts.py).
    uncounted_attempts: int = 0

    @classmethod
    def from_sqs(cls, raw: MessageTypeDef) -> SqsMessage:
        return cls(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw.get("Body", ""),
            attributes={str(key): str(value) for key, value in raw.get("Attributes", {}).items()},
            message_attributes=dict(raw.get("MessageAttributes", {})),
        )

    @property
    def receive_count(self) -> int:
        """This message's attempt: SQS's receive count, plus the attempts SQS did not count (FIFO)."""
        return self.sqs_receive_count + self.uncounted_attempts

    @property
    def sqs_receive_count(self) -> int:
        """How many times SQS has handed this message out (``ApproximateReceiveCount``)."""
        return int(self.attributes.get("ApproximateReceiveCount", "1"))

    @property
    def group_id(self) -> str | None:
        return self.attributes.get("MessageGroupId")

    @property
    def sequence_number(self) -> int | None:
        """FIFO only: the order SQS gave the message within its queue."""
        number = self.attributes.get("SequenceNumber")
        return int(number) if number else None

    @property
    def sent_at(self) -> datetime | None:
        millis = self.attributes.get("SentTimestamp")
        return datetime.fromtimestamp(int(millis) / 1000, tz=UTC) if millis else None

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body)


# A handler returns normally (or its awaitable completes) on success and raises on failure.
# ``async def`` handlers run on the drain's own event loop; plain ones on its threads.
Handler = Callable[[SqsMessage], Awaitable[None] | None]
