"""FIFO: a failing message is retried inside the pass, and dead-lettered by the consumer itself.

When a FIFO message fails and goes back to SQS, the rest of its group must go back with
it (nothing may overtake it), and every later receive counts against each of them: a
poison message at the head of a group would drag the messages behind it to the DLQ.
So on FIFO a failed message is retried here, after its backoff, while its group waits
in hand, heartbeated like every held message, and SQS counts no receive. Once it has
had ``maxReceiveCount`` attempts (the queue's own redrive policy), the consumer sends it
to the DLQ itself (its group, body and attributes, a deduplication ID derived from its
message ID) and deletes it; its group goes on in order.

The redrive policy stays the backstop: a pass that ends mid-retry (budget, stop) gives
the group back with the backoff, as standard queues always do, and a crash leaves the
messages to their visibility timeout.

Cost: a retry costs no request; a dead-lettered message one ``SendMessage`` (plus its
share of a delete batch); the first failure of a pass reads the redrive policy (two
requests, once per pass).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ..queues import RedriveTarget, redrive_target
from .message import SqsMessage
from .summary import Counts

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

# The fields SendMessage takes back from a received message attribute.
ATTRIBUTE_FIELDS = ("DataType", "StringValue", "BinaryValue")


class DeadLetterer:
    def __init__(self, client: SQSClient, queue_url: str, counts: Counts) -> None:
        self.client = client
        self.queue_url = queue_url
        self.counts = counts
        self._target: RedriveTarget | None = None
        self._looked_up = False
        self._lock = threading.Lock()

    def target(self) -> RedriveTarget | None:
        """The queue's redrive policy, read once per pass at the first failure; None without one."""
        with self._lock:
            if not self._looked_up:
                try:
                    self._target = redrive_target(self.client, self.queue_url)
                except Exception as error:  # botocore has retried: fall back to the redrive policy
                    self.counts.error(error)
                    # At least one request (GetQueueUrl may have been the one to fail).
                    self.counts.add(dead_letter_requests=1)
                    logger.warning("could not read the redrive policy of %s: %s", self.queue_url, error)
                    return None
                self._looked_up = True
                # GetQueueAttributes, and GetQueueUrl for the DLQ when there is one.
                self.counts.add(dead_letter_requests=2 if self._target else 1)
            return self._target

    def move(self, message: SqsMessage, target: RedriveTarget) -> bool:
        """Send ``message`` to the DLQ as it was received; True once SQS has it."""
        attributes: dict[str, Any] = {
            name: {key: value[key] for key in ATTRIBUTE_FIELDS if key in value}  # type: ignore[literal-required]
            for name, value in message.message_attributes.items()
        }
        try:
            self.client.send_message(
                QueueUrl=target.dlq_url,
                MessageBody=message.body,
                MessageAttributes=attributes,
                MessageGroupId=message.group_id or "default",
                # A repeated move (a crash between send and delete) lands once.
                MessageDeduplicationId=message.message_id,
            )
        except Exception as error:
            self.counts.error(error)
            logger.warning("could not move message %s to the DLQ: %s", message.message_id, error)
            return False
        finally:
            self.counts.add(dead_letter_requests=1)
        self.counts.add(dead_lettered=1)
        logger.warning(
            "message %s failed %d times: moved to the DLQ", message.message_id, message.receive_count
        )
        return True
