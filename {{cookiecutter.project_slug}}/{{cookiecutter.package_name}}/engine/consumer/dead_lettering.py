"""FIFO: a failing message is retried inside the pass, and dead-lettered by the consumer itself.

When a FIFO message fails and goes back to SQS, the rest of its group must go back with
it (nothing may overtake it), and every later receive counts against each of them: a
poison message at the head of a group would drag the messages behind it to the DLQ.
So on FIFO a failed message is retried here, after its backoff, while its group waits
in hand, heartbeated like every held message, and SQS counts no receive. Once it has
had ``maxReceiveCount`` attempts (the queue's own redrive policy), the consumer sends it
to the DLQ itself (its group, body and attributes, its message ID as the deduplication
ID) and deletes it; its group goes on, in order, once SQS has confirmed that delete.

A pass that ends mid-retry (budget, stop, SQS's 12-hour limit) gives the group back with
what is left of the backoff, and the attempt ledger (attempts.py) keeps the attempts SQS
did not count, so the next pass goes on counting. The redrive policy stays the backstop
(a crash, a queue with no redrive policy).

One copy in the DLQ. Every move of a message sends its message ID as the deduplication
ID, so SQS drops a second send within its 5-minute deduplication window (an ID that changed
between two moves of one message would make the second copy certain). A second send
happens only when the delete after a move never came through (a crash, or a delete refused
through every retry): the message comes back when its visibility ends, at most
``SQS_VISIBILITY_TIMEOUT_SECONDS`` after the move (the heartbeat keeps it no further ahead),
and the first pass that receives it moves it again at once, without running it, because the
ledger had its attempts before the move. So the DLQ holds one copy while the visibility
timeout plus the time until a pass polls again stays under 5 minutes (60 s and a 1-minute
tick by default). Beyond that (a visibility timeout of more than about 4 minutes, or no pass
for minutes), or without the ledger, that rare crash can leave a second copy with the same
message ID; without the ledger the message also runs again before it moves.

Cost: a retry costs no request; a dead-lettered message one ``SendMessage`` (plus its
share of a delete batch) and, with the ledger, a Table write and a delete; the first
failure of a pass reads the redrive policy (two requests, once per pass).
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
