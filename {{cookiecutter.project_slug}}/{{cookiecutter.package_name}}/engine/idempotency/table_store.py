"""Idempotency records in Azure Table storage, claimed and settled with ETags.

- ``claim``: insert if absent (``create_entity``). A key already there is read; a lapsed
  or expired record is taken over by an update conditional on the ETag read, so of two
  claimants exactly one wins (the other gets 412 and is told the key is busy).
- ``complete`` (the body returned) and the keeper's renewals: updates conditional on the
  claim's ETag.
- ``release`` (the body raised): a delete conditional on it, so SQS's retry may run at once.
- ``abandon`` (the body was interrupted): nothing is written; the lease lapses, as after a crash.

**A storage failure is the store's, never the message's.** A table call that fails after
the SDK's own retries is tried again, 0.2 s later and doubling to 5 s, for the retry
window: a third of the lease, at most 20 s, so a completion retried to the end of it
still lands within the lease the keeper last renewed. Each table call is bounded too
(``CLIENT_TIMEOUTS``: about 15 s with the SDK's retries, not its 300 s per try). An error
that no retry can mend (a 4xx) skips the window. When the window runs out:

- ``claim`` raises ``StoreUnavailable``: the body has not run, so the message fails and
  SQS hands it out again; the log says the store failed, not the message;
- ``complete`` logs the key and returns: the body ran, so the message is deleted as
  handled. The keeper tries the write again until it lands or the lease lapses;
- ``release`` logs the key and returns (the body's own error goes on to the consumer);
  the keeper tries the delete again until it lands or the lease lapses.

**This process's own attempts.** Each claim writes a random ``holder`` token. A write that
landed but whose answer was lost is recognized by it, so a retried write never takes its
own earlier write for another attempt's. And when the body of a claim in this process
has ended (it raised, was interrupted, or returned) but its record still says in
progress (the store refused the write, or the write is still being retried), a later
delivery of the key in this process does not wait for the lease: it takes the record
over at once, or skips the body if that attempt completed it. This is sound because the
record read names that ended attempt as its holder, and the take-over is conditional on
the ETag read: no live attempt holds the key. Another process cannot know that the
attempt ended (SQS redelivering a message proves only that its visibility ran out, not
that its body stopped), so there the lease decides, as after a crash.

Table transactions: 2 for a message handled the first time (insert, complete) or failing
(insert, delete); 2 for a duplicate (the refused insert, a read); a take-over adds one
update; a body running longer than a third of the lease adds one renewal per third. A
failed call costs one more call per retry; a write whose ETag no longer matches adds a
read. The table is created by the first insert that finds it missing, so it costs
nothing after.

azure-data-tables (and azure-identity, in Azure) load at the first claim, not at cold start.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ..settings import IdempotencySettings
from ..storage_account import storage_address
from .lease import LeaseKeeper
from .record import AttemptInProgress, Record, Status, Verdict

if TYPE_CHECKING:
    from azure.core.exceptions import AzureError
    from azure.data.tables import TableClient

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
T = TypeVar("T")
# Table keys refuse / \ # ? and control characters and hold at most 1 KiB: other keys are hashed.
PLAIN_KEY = re.compile(r"^[A-Za-z0-9._:@=+<>-]{1,200}$")
HASHED_PREFIX = "sha256-"
CLAIM_ATTEMPTS = 3
# A failed table call is tried again after 0.2 s, doubling to 5 s, for the retry window: a third of
# the lease (the keeper's renewal period, so a completion lands within the lease), at most 20 s.
RETRY_FIRST_DELAY_SECONDS = 0.2
RETRY_MAX_DELAY_SECONDS = 5.0
RETRY_WINDOW_MAX_SECONDS = 20.0
# One table call, the SDK's retries included (azure-core's absolute timeout), and each try's
# connect and read: a hung call holds its message's handler for about 15 s, not 300 s per try.
CLIENT_TIMEOUTS: dict[str, Any] = {"timeout": 15, "connection_timeout": 5, "read_timeout": 10}
# HTTP statuses worth another try; any other 4xx is an answer (missing role, bad request).
TRANSIENT_STATUSES = frozenset({408, 429})


def utc_now() -> datetime:
    return datetime.now(UTC)


def table_key(value: str) -> str:
    """``value`` as a PartitionKey or RowKey: as is when plain, else its SHA-256.

    Hashed keys begin with ``HASHED_PREFIX`` and plain ones never do (a value that does is
    hashed too), so a key crafted as another key's hashed form cannot collide with it. A
    hashed key also keeps a body-derived value (an email, say) out of storage and logs.
    """
    if PLAIN_KEY.match(value) and not value.startswith(HASHED_PREFIX):
        return value
    return HASHED_PREFIX + hashlib.sha256(value.encode("utf-8")).hexdigest()


def is_transient(error: AzureError) -> bool:
    """No answer (the network, a timeout, the credential) or a 5xx, 408 or 429: worth another try."""
    status = getattr(error, "status_code", None)
    return status is None or status >= 500 or status in TRANSIENT_STATUSES


class StoreUnavailable(RuntimeError):
    """Table storage failed for the whole retry window: the store's failure, not the message's."""


class Phase(enum.Enum):
    """Where one attempt's claim stands."""

    RUNNING = "running"  # the body runs; the keeper renews the lease
    COMPLETING = "completing"  # the body returned; recording that is not done yet
    RELEASING = "releasing"  # the body raised; deleting the record is not done yet
    ABANDONED = "abandoned"  # the body was interrupted; nothing is written, the lease lapses
    SETTLED = "settled"  # recorded or deleted, or taken over by a later delivery in this process
    LOST = "lost"  # another attempt took the key over: this one renewed too late (a stalled process)


# The body has ended, and the record still says in progress.
ENDED = (Phase.COMPLETING, Phase.RELEASING, Phase.ABANDONED)


@dataclass(eq=False)
class Claim:
    """One attempt's hold on a key, until the end of its body is recorded."""

    record: Record
    etag: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    phase: Phase = Phase.RUNNING

    @property
    def key(self) -> str:
        return table_key(self.record.key)

    @property
    def row(self) -> tuple[str, str]:
        """Its PartitionKey and RowKey."""
        return table_key(self.record.key), table_key(self.record.scope)


class TableStore:
    """The records of one table. Thread-safe: the SDK's client is, and each claim has its lock."""

    def __init__(self, table: TableClient, settings: IdempotencySettings, *, clock: Clock = utc_now) -> None:
        self._table = table
        self.settings = settings
        self._clock = clock
        self._lease = timedelta(seconds=settings.in_progress_seconds)
        self._ttl = timedelta(seconds=settings.ttl_seconds)
        self.retry_window_seconds = min(settings.in_progress_seconds / 3, RETRY_WINDOW_MAX_SECONDS)
        self._keeper = LeaseKeeper(self._tend, every_seconds=settings.in_progress_seconds / 3)
        # This process's latest claim of each record, until the keeper lets it go.
        self._claims: dict[tuple[str, str], Claim] = {}
        self._claims_lock = threading.Lock()

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, clock: Clock = utc_now, **client_options: Any
    ) -> TableStore:
        """``client_options`` go to the TableClient (``per_call_policies=``, timeouts, ...)."""
        env = os.environ if environ is None else environ
        settings = IdempotencySettings.from_env(env)
        options = {**CLIENT_TIMEOUTS, **client_options}
        return cls(table_client(settings.table, env, **options), settings, clock=clock)

    # Claiming: at most one attempt per key holds it at a time.
    def claim(self, key: str, scope: str, message_id: str) -> Claim | None:
        """The key claimed for this attempt; None when it is already complete (skip the body).

        Raises ``AttemptInProgress`` while another attempt holds the key, and ``StoreUnavailable``
        when storage fails for the whole retry window: the body must never run unguarded.
        """
        holder = uuid.uuid4().hex  # this attempt, through every try below
        try:
            return self._retrying(lambda: self._claim_once(key, scope, message_id, holder), "claim", key)
        except StoreUnavailable as failure:
            logger.warning(
                "idempotency store failed while claiming key %s for message %s: the store's failure, "
                "not the message's. The body did not run; the message fails so that SQS hands it out "
                "again. %s",
                table_key(key),
                message_id,
                failure,
            )
            raise

    def _claim_once(self, key: str, scope: str, message_id: str, holder: str) -> Claim | None:
        for _ in range(CLAIM_ATTEMPTS):
            now = self._clock()
            new = Record.claimed(
                key, scope, message_id, now=now, lease=self._lease, ttl=self._ttl, holder=holder
            )
            claim = self._insert(new)
            if claim is None:
                found = self._read(key, scope)
                if found is None:
                    continue  # released between our insert and read: insert again
                record, etag = found
                if record.holder == holder:  # our own insert or take-over, whose answer was lost
                    claim = Claim(record, etag)
                else:
                    verdict = record.verdict(now)
                    if verdict is Verdict.DONE:
                        return None
                    ended = self._ended_holder(record)
                    if ended is not None:  # what this process knows goes before the lease
                        after = self._after_ended(ended, record, etag, new, now)
                        if after is Verdict.DONE:
                            return None
                        claim = after
                    elif verdict is Verdict.BUSY:
                        raise AttemptInProgress(
                            f"key {table_key(key)} is held by message {record.message_id} (attempt "
                            f"{record.attempt}) until {record.lease_until.isoformat()}; retry later"
                        )
                    else:
                        claim = self._take_over(record, etag, new, now)
                if claim is None:
                    continue
            self._track(claim)
            return claim
        raise AttemptInProgress(f"key {table_key(key)} keeps changing hands; retry later")

    def _ended_holder(self, record: Record) -> Claim | None:
        """This process's claim that holds ``record``, if its body has ended."""
        with self._claims_lock:
            mine = self._claims.get((table_key(record.key), table_key(record.scope)))
        if mine is None or mine.record.holder != record.holder or mine.phase not in ENDED:
            return None
        return mine

    def _after_ended(
        self, ended: Claim, record: Record, etag: str, new: Record, now: datetime
    ) -> Claim | Literal[Verdict.DONE] | None:
        """``new``'s claim in place of an ended attempt of this process; ``DONE`` when that attempt
        completed the body (skip it); None when it changed meanwhile (look again)."""
        from azure.core.exceptions import AzureError

        with ended.lock:
            if ended.phase is Phase.COMPLETING:
                # Its body succeeded here: record what it could not (or the keeper goes on trying).
                with contextlib.suppress(AzureError):
                    self._settle_once(ended)
                return Verdict.DONE
            if ended.phase not in ENDED:
                return None
            claim = self._take_over(record, etag, new, now)  # conditional on the ETag read
            if claim is not None:
                ended.phase = Phase.SETTLED
                logger.info(
                    "idempotency key %s: message %s takes it over at once from an ended attempt of this "
                    "process (message %s)",
                    claim.key,
                    new.message_id,
                    record.message_id,
                )
            return claim

    def _insert(self, record: Record) -> Claim | None:
        """The claim, or None when the key has a record already."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        try:
            return Claim(record, self._create(record))
        except ResourceExistsError:
            return None
        except ResourceNotFoundError:  # an insert finds nothing else missing: the table
            self._create_table()
        try:
            return Claim(record, self._create(record))
        except ResourceExistsError:
            return None

    def _take_over(self, old: Record, etag: str, new: Record, now: datetime) -> Claim | None:
        """``new`` in place of a lapsed, expired or ended record; None when it is gone meanwhile."""
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        successor = old.taken_over(new, now)
        try:
            return Claim(successor, self._replace(successor, etag))
        except ResourceModifiedError:
            # Another attempt changed it since we read it: it won the claim.
            raise AttemptInProgress(f"key {table_key(new.key)} was just claimed by another attempt") from None
        except ResourceNotFoundError:
            return None

    def _track(self, claim: Claim) -> None:
        with self._claims_lock:
            self._claims[claim.row] = claim
        self._keeper.keep(claim)

    def _let_go(self, claim: Claim) -> None:
        self._keeper.drop(claim)
        with self._claims_lock:
            if self._claims.get(claim.row) is claim:
                del self._claims[claim.row]

    # The body has ended: record it.
    def complete(self, claim: Claim) -> None:
        """The body returned: the key is done for the TTL.

        Never raises for the store: the body ran, so past the retry window the message is
        still handled (see the module's docstring), and the failure is logged with the key.
        """
        if not self._end(claim, Phase.COMPLETING):
            return
        try:
            self._retrying(lambda: self._settle(claim), "record the completion of", claim.key)
        except StoreUnavailable as failure:
            logger.error(
                "could not record the completion of idempotency key %s (message %s): the store's failure, "
                "not the body's. The body ran, so the message is handled; the write is tried again in "
                "the background until the lease lapses (%s), after which a duplicate would run the body "
                "again. %s",
                claim.key,
                claim.record.message_id,
                claim.record.lease_until.isoformat(),
                failure,
            )
            return
        self._let_go(claim)

    def release(self, claim: Claim) -> None:
        """The body raised: forget the claim, so the message's retry may run at once."""
        if not self._end(claim, Phase.RELEASING):
            return
        try:
            self._retrying(lambda: self._settle(claim), "release", claim.key)
        except StoreUnavailable as failure:
            logger.warning(
                "could not release idempotency key %s after the body of message %s raised: the store's "
                "failure; the body's own error follows. A retry in this process takes the key over at "
                "once; elsewhere it waits for the lease (%s). %s",
                claim.key,
                claim.record.message_id,
                claim.record.lease_until.isoformat(),
                failure,
            )
            return
        self._let_go(claim)

    def abandon(self, claim: Claim) -> None:
        """The body was interrupted: nothing is written, and the claim lapses after its lease, as
        after a crash; a later delivery of the key in this process takes it over at once."""
        self._end(claim, Phase.ABANDONED)

    def _end(self, claim: Claim, phase: Phase) -> bool:
        """Marks the body's end; False when another attempt took the key over (logged then)."""
        with claim.lock:
            if claim.phase is not Phase.RUNNING:
                return False
            claim.phase = phase
            return True

    def _settle(self, claim: Claim) -> None:
        with claim.lock:
            self._settle_once(claim)

    def _settle_once(self, claim: Claim) -> None:
        """One try at writing the end of an ended body (``claim.lock`` held); raises ``AzureError``."""
        if claim.phase is Phase.COMPLETING:
            self._write(claim, claim.record.completed(self._clock(), self._ttl), "complete")
        elif claim.phase is Phase.RELEASING:
            self._delete(claim)
        else:
            return  # abandoned: nothing to write; settled or lost: nothing left
        if claim.phase in ENDED:  # not lost meanwhile
            claim.phase = Phase.SETTLED

    def _tend(self, claim: Claim) -> bool:
        """The keeper's call, every third of a lease: renew, or retry an end; whether to come back."""
        from azure.core.exceptions import AzureError

        with claim.lock:
            if claim.phase is Phase.RUNNING:
                try:
                    self._write(claim, claim.record.renewed(self._clock(), self._lease), "renew")
                except AzureError as error:  # a third of a lease later, it tries again
                    logger.warning("could not renew the lease of idempotency key %s: %s", claim.key, error)
                again = claim.phase is Phase.RUNNING
            elif claim.phase in ENDED and self._clock() < claim.record.lease_until:
                try:
                    self._settle_once(claim)
                except AzureError as error:
                    logger.debug("idempotency key %s: its end is not recorded yet: %s", claim.key, error)
                again = claim.phase in ENDED
            else:
                if claim.phase is Phase.COMPLETING:
                    logger.error(
                        "gave up recording the completion of idempotency key %s (message %s): its lease "
                        "lapsed first, so a duplicate delivered from now on runs the body again",
                        claim.key,
                        claim.record.message_id,
                    )
                again = False
        if not again:
            self._let_go(claim)
        return again

    def _retrying(self, attempt: Callable[[], T], what: str, key: str) -> T:
        """``attempt()``, tried again with backoff while storage fails, for the retry window."""
        from azure.core.exceptions import AzureError

        started = time.monotonic()
        delay = RETRY_FIRST_DELAY_SECONDS
        tries = 0
        while True:
            tries += 1
            try:
                result = attempt()
            except AzureError as error:
                spent = time.monotonic() - started
                if not is_transient(error) or spent >= self.retry_window_seconds:
                    raise StoreUnavailable(
                        f"table storage failed {tries} time(s) in {spent:.1f} s while trying to {what} "
                        f"idempotency key {table_key(key)}: {error}"
                    ) from error
                logger.debug(
                    "table storage failed to %s key %s (try %d): %s", what, table_key(key), tries, error
                )
                time.sleep(min(delay, self.retry_window_seconds - spent))  # the last try at the window's end
                delay = min(delay * 2, RETRY_MAX_DELAY_SECONDS)
                continue
            if tries > 1:
                logger.info("table storage recovered: %s key %s took %d tries", what, table_key(key), tries)
            return result

    # Writes of a claim (``claim.lock`` held).
    def _write(self, claim: Claim, record: Record, step: str) -> None:
        """``record`` in place of the claim's, conditional on its ETag."""
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        for _ in range(CLAIM_ATTEMPTS):
            try:
                claim.etag = self._replace(record, claim.etag)
                claim.record = record
                return
            except (ResourceModifiedError, ResourceNotFoundError):
                found = self._read(record.key, record.scope)
            if found is None or found[0].holder != record.holder:
                self._lose(claim, step)
                return
            current, claim.etag = found  # our own earlier write, whose answer was lost: go on from it
            if current.status is Status.COMPLETE:
                claim.record = current
                return
        self._lose(claim, step)

    def _delete(self, claim: Claim) -> None:
        """The claim's record deleted, conditional on its ETag; gone already is fine."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        for _ in range(CLAIM_ATTEMPTS):
            try:
                self._table.delete_entity(
                    *claim.row, etag=claim.etag, match_condition=MatchConditions.IfNotModified
                )
                return
            except ResourceModifiedError:
                found = self._read(claim.record.key, claim.record.scope)
            if found is None or found[0].holder != claim.record.holder:
                claim.phase = Phase.LOST  # another attempt holds it now: nothing of ours to delete
                return
            claim.etag = found[1]  # our own earlier write, whose answer was lost
        claim.phase = Phase.LOST

    def _lose(self, claim: Claim, step: str) -> None:
        claim.phase = Phase.LOST
        logger.error(
            "idempotency key %s (message %s): another attempt took it over before %s; its lease "
            "(IDEMPOTENCY_IN_PROGRESS_SECONDS) ran out before this attempt had recorded its end, "
            "so the body may have run twice",
            claim.key,
            claim.record.message_id,
            step,
        )

    # Cleaning: Table storage has no TTL of its own.
    def purge_expired(self, now: datetime | None = None) -> dict[str, int]:
        """Deletes records past their TTL; a record claimed again meanwhile is kept."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        expired = self._table.query_entities(
            "ExpiresAt lt @now", parameters={"now": now or self._clock()}, select=["PartitionKey", "RowKey"]
        )
        counts = {"deleted": 0, "kept": 0}
        for entity in expired:
            try:
                self._table.delete_entity(
                    entity["PartitionKey"],
                    entity["RowKey"],
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                counts["deleted"] += 1
            except (ResourceModifiedError, ResourceNotFoundError):
                counts["kept"] += 1
        return counts

    # Table calls.
    def _create(self, record: Record) -> str:
        return str(self._table.create_entity(entity(record))["etag"])

    def _replace(self, record: Record, etag: str) -> str:
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        metadata = self._table.update_entity(
            entity(record), mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
        )
        return str(metadata["etag"])

    def _read(self, key: str, scope: str) -> tuple[Record, str] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            found = self._table.get_entity(table_key(key), table_key(scope))
        except ResourceNotFoundError:
            return None
        record = Record(
            key=key,
            scope=scope,
            status=Status(found["Status"]),
            lease_until=found["LeaseUntil"],
            expires_at=found["ExpiresAt"],
            message_id=str(found["MessageId"]),
            attempt=int(found["Attempt"]),
            holder=str(found.get("Holder", "")),  # records written before holders were: ""
        )
        return record, str(found.metadata["etag"])

    def _create_table(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):  # another process created it meanwhile
            self._table.create_table()


def entity(record: Record) -> dict[str, Any]:
    return {
        "PartitionKey": table_key(record.key),
        "RowKey": table_key(record.scope),
        "Status": record.status.value,
        "LeaseUntil": record.lease_until,
        "ExpiresAt": record.expires_at,
        "MessageId": record.message_id,
        "Attempt": record.attempt,
        "Holder": record.holder,
    }


def table_client(table: str, environ: Mapping[str, str] | None = None, **options: Any) -> TableClient:
    """A client of ``table`` in the app's storage account, reached as the Functions host reaches it.

    ``AzureWebJobsStorage`` holding a connection string (Azurite locally) wins; else the
    identity-based form: ``AzureWebJobsStorage__tableServiceUri`` (or ``__accountName``)
    with the managed identity (``__credential=managedidentity``, ``__clientId`` for a
    user-assigned one). ``options`` go to the client (retry and pipeline policies).
    """
    from azure.data.tables import TableClient

    address = storage_address("table", "idempotency", environ)
    if address.connection_string:
        return TableClient.from_connection_string(address.connection_string, table, **options)
    return TableClient(address.service_uri, table, credential=address.credential(), **options)
