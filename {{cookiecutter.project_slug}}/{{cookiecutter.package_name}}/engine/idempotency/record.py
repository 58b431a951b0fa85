"""An idempotency record and its states: what a delivery may do with its key.

A key's record is claimed ``in_progress`` by one attempt, under a lease, and becomes
``complete`` when the body returns. It counts until ``expires_at`` (the TTL): after
that it is ignored and overwritten, as if absent. ``holder`` names the attempt that
wrote it (a random token per claim), so an attempt knows its own writes again, even one
whose answer was lost, and the store knows when the holder is an attempt of its own
process that has ended (see table_store.py).

| record found                    | verdict     | the delivery...                            |
|---------------------------------|-------------|--------------------------------------------|
| none, or expired                | ``CLAIM``   | claims the key and runs the body           |
| in progress, lease running      | ``BUSY``    | fails: SQS redelivers it after its backoff  |
| in progress, lease lapsed       | ``CLAIM``   | takes over a crashed attempt, runs the body |
| complete                        | ``DONE``    | skips the body and succeeds                |

``BUSY`` is the record's verdict alone: the store also knows its own process's attempts,
and takes a key over at once from one that has ended (table_store.py).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


class Status(enum.Enum):
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"


class Verdict(enum.Enum):
    CLAIM = "claim"
    BUSY = "busy"
    DONE = "done"


class AttemptInProgress(RuntimeError):
    """Another attempt holds the key right now; raising lets SQS redeliver this message later."""


@dataclass(frozen=True)
class Record:
    key: str
    scope: str
    status: Status
    # In progress: the attempt's lease; once it lapses, another attempt may take over.
    lease_until: datetime
    # The record counts until then; older records are ignored and overwritten.
    expires_at: datetime
    message_id: str
    attempt: int = 1
    # The attempt that wrote it: one token per claim, kept by its renewals and completion.
    holder: str = ""

    @classmethod
    def claimed(
        cls,
        key: str,
        scope: str,
        message_id: str,
        *,
        now: datetime,
        lease: timedelta,
        ttl: timedelta,
        holder: str | None = None,
    ) -> Record:
        holder = holder or uuid.uuid4().hex
        return cls(key, scope, Status.IN_PROGRESS, now + lease, now + ttl, message_id, holder=holder)

    def verdict(self, now: datetime) -> Verdict:
        if self.expires_at <= now:
            return Verdict.CLAIM
        if self.status is Status.COMPLETE:
            return Verdict.DONE
        return Verdict.BUSY if self.lease_until > now else Verdict.CLAIM

    def taken_over(self, new: Record, now: datetime) -> Record:
        """``new``'s claim in place of this record: a lapsed attempt's successor counts on."""
        attempt = self.attempt + 1 if self.expires_at > now else 1
        return replace(new, attempt=attempt)

    def renewed(self, now: datetime, lease: timedelta) -> Record:
        return replace(self, lease_until=now + lease)

    def completed(self, now: datetime, ttl: timedelta) -> Record:
        return replace(self, status=Status.COMPLETE, lease_until=now, expires_at=now + ttl)
