"""FIFO: the attempts SQS does not count, kept across passes by an optional ledger.

On FIFO a failing message is retried inside the pass (dead_lettering.py), and SQS's
``ApproximateReceiveCount`` misses those attempts. A pass that ends mid-retry (budget, stop,
SQS's 12-hour limit) gives the message back, and the next receive counts only one more:
without more, the message would get more than ``maxReceiveCount`` attempts, and its backoff
would start over.

Why a record, and not ``ApproximateFirstReceiveTimestamp`` and the backoff schedule: the time
since the first receive also holds the handlers' run time and the time the message waited,
visible, for a pass (an idle queue between ticks, a stalled timer). Attempts derived from it
are too many, and would move to the DLQ a message that had fewer than ``maxReceiveCount``.
SQS keeps nothing per message that a consumer can write. So a pass writes down how many
attempts SQS has not counted, only when it gives back a message that has some (and before
it moves one to the DLQ: a crash then cannot run it again, see dead_lettering.py). A later
pass reads it for a FIFO message that SQS has delivered before (``ApproximateReceiveCount`` >
1: after a hand-back, a release or a crash), and the pass that deletes the message forgets it.

The ledger is optional and outside the consumer: ``drain`` takes any ``AttemptLedger``; the
app passes one on Azure Tables (engine/attempt_ledger.py) when its storage account is set.
Without one (the ops CLI with no storage), or while it fails (logged once a pass, then left
alone for the pass), a hand-back mid-retry costs the attempts SQS did not count, as SQS's own
count would: never a message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from .summary import Counts

logger = logging.getLogger(__name__)

T = TypeVar("T")


class AttemptLedger(Protocol):
    """Where uncounted attempts outlive a pass: by message ID, for one queue."""

    def recall(self, message_ids: Sequence[str]) -> dict[str, int]:
        """The uncounted attempts of those of ``message_ids`` written down (others: none)."""
        ...

    def note(self, uncounted: Mapping[str, int]) -> None:
        """Write down (replace) the uncounted attempts of each message."""
        ...

    def forget(self, message_ids: Sequence[str]) -> None:
        """Drop the records of messages that are gone; absent ones are fine."""
        ...


class PassLedger:
    """A pass's use of the ledger: never raises, and after a failure leaves it alone for the pass."""

    def __init__(self, ledger: AttemptLedger | None, counts: Counts) -> None:
        self._ledger = ledger
        self._counts = counts
        self._failed = False
        self._lock = threading.Lock()

    def recall(self, message_ids: Sequence[str]) -> dict[str, int]:
        return self._call("recall", lambda ledger: ledger.recall(message_ids), message_ids) or {}

    def note(self, uncounted: Mapping[str, int]) -> None:
        self._call("note", lambda ledger: ledger.note(uncounted), list(uncounted))

    def forget(self, message_ids: Sequence[str]) -> None:
        self._call("forget", lambda ledger: ledger.forget(message_ids), message_ids)

    def _call(self, what: str, call: Callable[[AttemptLedger], T], message_ids: Sequence[str]) -> T | None:
        with self._lock:
            if self._ledger is None or self._failed or not message_ids:
                return None
        self._counts.add(attempt_ledger_calls=1)
        try:
            return call(self._ledger)
        except Exception as error:
            with self._lock:
                first, self._failed = not self._failed, True
            if first:
                logger.warning(
                    "attempt ledger failed (%s, %s: %s); this pass counts attempts from SQS's receive count",
                    what,
                    type(error).__name__,
                    error,
                )
            return None
