"""Receiving: the ``ReceiveMessage`` call, and the polling policy that keeps an idle tick short.

- The first poll waits ``linger_seconds`` (1 s by default), not 20: on an empty queue the
  pass ends after about a second of execution.
- Each message received pushes the end of the linger on; each poll waits for what is
  left of it (at most ``wait_time_seconds``), so polls are long only while messages flow
  or the linger asks for it.
- A timer pass may be asked to poll until the next tick is due (``poll_until``,
  SQS_POLL_UNTIL_NEXT_TICK): the linger then runs at least that long.
- Or only while messages keep coming (``PollWhileBusy``, SQS_POLL_WHILE_BUSY): each message seen
  makes the linger run until the next tick, and the passes after it start that way, until a quiet
  spell (SQS_QUIET_SPELL_SECONDS) has gone by without one. Then passes end after the linger again.
- Receive errors (each already retried by botocore) pause receiving with a growing delay;
  after ``RECEIVE_ERRORS_BEFORE_GIVING_UP`` in a row the pass gives up.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .message import SqsMessage
from .options import DrainOptions
from .sizing import Sizing
from .summary import Counts

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

RECEIVE_ERRORS_BEFORE_GIVING_UP = 3


class LastMessage:
    """When a message was last seen (``time.monotonic()``), kept across the passes of one process."""

    def __init__(self) -> None:
        self._seen_at = -math.inf
        self._lock = threading.Lock()

    def saw(self, at: float) -> None:
        with self._lock:
            self._seen_at = max(self._seen_at, at)

    @property
    def seen_at(self) -> float:
        with self._lock:
            return self._seen_at


@dataclass(frozen=True)
class PollWhileBusy:
    """A timer pass polls until ``next_tick`` while messages keep coming: from a message seen in it,
    or in an earlier pass less than ``quiet_spell_seconds`` ago (``last_message``)."""

    next_tick: float
    quiet_spell_seconds: float
    last_message: LastMessage

    def busy_until(self) -> float:
        return min(self.next_tick, self.last_message.seen_at + self.quiet_spell_seconds)


class Polling:
    """When to poll, how long each poll waits, and when the queue counts as empty."""

    def __init__(
        self,
        options: DrainOptions,
        started: float,
        poll_until: float | None = None,
        busy: PollWhileBusy | None = None,
    ) -> None:
        self.options = options
        self.busy = busy
        # Polling until the next tick (``poll_until``) makes the drain continuous: no gap between passes.
        self.linger_until = max(started + options.linger_seconds, poll_until or 0.0)
        if busy:
            self.linger_until = max(self.linger_until, busy.busy_until())
        # Once a receive comes back full, more may go out at once (see sizing.py).
        self.flowing = False
        self.retry_at = 0.0
        self._errors_in_a_row = 0
        self._lock = threading.Lock()

    def wait_seconds(self, now: float, deadline: float) -> int:
        with self._lock:
            lingering = math.ceil(max(0.0, self.linger_until - now))
        # Never wait past the budget.
        return max(0, min(lingering, self.options.wait_time_seconds, math.floor(deadline - now) - 1))

    def received(self, count: int, batch: int, sent_at: float, now: float) -> None:
        with self._lock:
            self._errors_in_a_row = 0
            self.flowing = count >= batch
            if count:
                # A full batch came back at once: polls sent after it proved emptiness. A partial
                # one may have waited for its messages: the linger runs from their arrival.
                seen_at = sent_at if self.flowing else now
                self.linger_until = max(self.linger_until, seen_at + self.options.linger_seconds)
                if self.busy:
                    self.busy.last_message.saw(seen_at)
                    self.linger_until = max(self.linger_until, self.busy.busy_until())

    def lingered(self, sent_at: float, wait_seconds: int) -> bool:
        """An empty receive sent at ``sent_at`` proves the queue empty to the end of the linger."""
        with self._lock:
            return sent_at + wait_seconds >= self.linger_until - 0.001

    def failed(self, now: float, deadline: float) -> int:
        """Counts an error; returns the errors in a row and pauses receiving for a while."""
        with self._lock:
            self._errors_in_a_row += 1
            self.flowing = False
            self.retry_at = now + min(2.0**self._errors_in_a_row, max(deadline - now - 1, 0))
            return self._errors_in_a_row


class Receiver:
    def __init__(
        self, client: SQSClient, queue_url: str, options: DrainOptions, counts: Counts, sizing: Sizing
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.options = options
        self.counts = counts
        self.sizing = sizing

    def receive(self, max_messages: int, wait_seconds: int) -> tuple[list[SqsMessage], float] | None:
        """Up to ``max_messages`` and when the call was sent; None when SQS failed."""
        sent_at = time.monotonic()
        try:
            response = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=self.options.visibility_timeout_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception as error:
            self.counts.add(receive_requests=1)
            self.counts.error(error)
            logger.warning("ReceiveMessage failed: %s", error)
            return None
        messages = [SqsMessage.from_sqs(raw) for raw in response.get("Messages", [])]
        self.counts.add(receive_requests=1, received=len(messages), empty_receives=0 if messages else 1)
        self.sizing.delivered.add(len(messages))
        if messages:
            # An empty long poll measures its wait, not the round trip.
            round_trip = time.monotonic() - sent_at
            self.sizing.receive_round_trip.add(round_trip)
            self.counts.round_trip(round_trip)
        return messages, sent_at
