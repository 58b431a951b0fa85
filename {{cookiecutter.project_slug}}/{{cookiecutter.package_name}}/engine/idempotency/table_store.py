"""Idempotency records in Azure Table storage, claimed and settled with ETags.

- ``claim``: insert if absent (``create_entity``). A key already there is read; a lapsed
  or expired record is taken over by an update conditional on the ETag read, so of two
  claimants exactly one wins (the other gets 412 and is told the key is busy).
- ``renew`` and ``complete``: updates conditional on the claim's ETag.
- ``release`` (the body raised): a delete conditional on it, so SQS's retry may run at once.

Table transactions: 2 for a message handled the first time (insert, complete) or failing
(insert, delete); 2 for a duplicate (the refused insert, a read); a take-over adds one
update; a body running longer than a third of the lease adds one renewal per third. The
table is created by the first insert that finds it missing, so it costs nothing after.

azure-data-tables (and azure-identity, in Azure) load at the first claim, not at cold start.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..settings import IdempotencySettings
from ..storage_account import storage_address
from .lease import LeaseKeeper
from .record import AttemptInProgress, Record, Status, Verdict

if TYPE_CHECKING:
    from azure.data.tables import TableClient

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Table keys refuse / \ # ? and control characters and hold at most 1 KiB: other keys are hashed.
PLAIN_KEY = re.compile(r"^[A-Za-z0-9._:@=+<>-]{1,200}$")
HASHED_PREFIX = "sha256-"
CLAIM_ATTEMPTS = 3
# The Functions host's names for an identity-based storage connection (infra/ sets them in Azure).


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


@dataclass(eq=False)
class Claim:
    """One attempt's hold on a key, until it completes or releases it."""

    record: Record
    etag: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    settled: bool = False
    # Another attempt took the key over: this one renewed too late (a stalled process).
    lost: bool = False

    @property
    def key(self) -> str:
        return table_key(self.record.key)


class TableStore:
    """The records of one table. Thread-safe: the SDK's client is, and each claim has its lock."""

    def __init__(self, table: TableClient, settings: IdempotencySettings, *, clock: Clock = utc_now) -> None:
        self._table = table
        self.settings = settings
        self._clock = clock
        self._lease = timedelta(seconds=settings.in_progress_seconds)
        self._ttl = timedelta(seconds=settings.ttl_seconds)
        self._keeper = LeaseKeeper(self.renew, every_seconds=settings.in_progress_seconds / 3)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, clock: Clock = utc_now, **client_options: Any
    ) -> TableStore:
        env = os.environ if environ is None else environ
        settings = IdempotencySettings.from_env(env)
        return cls(table_client(settings.table, env, **client_options), settings, clock=clock)

    # Claiming: at most one attempt per key holds it at a time.
    def claim(self, key: str, scope: str, message_id: str) -> Claim | None:
        """The key claimed for this attempt; None when it is already complete (skip the body).

        Raises ``AttemptInProgress`` while another attempt's lease runs.
        """
        for _ in range(CLAIM_ATTEMPTS):
            now = self._clock()
            new = Record.claimed(key, scope, message_id, now=now, lease=self._lease, ttl=self._ttl)
            claim = self._insert(new)
            if claim is None:
                found = self._read(key, scope)
                if found is None:
                    continue  # released between our insert and read: insert again
                record, etag = found
                verdict = record.verdict(now)
                if verdict is Verdict.DONE:
                    return None
                if verdict is Verdict.BUSY:
                    raise AttemptInProgress(
                        f"key {table_key(key)} is held by message {record.message_id} (attempt "
                        f"{record.attempt}) until {record.lease_until.isoformat()}; retry later"
                    )
                claim = self._take_over(record, etag, new, now)
                if claim is None:
                    continue
            self._keeper.keep(claim)
            return claim
        raise AttemptInProgress(f"key {table_key(key)} keeps changing hands; retry later")

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
        """``new`` in place of a lapsed or expired record; None when it is gone meanwhile."""
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        successor = old.taken_over(new, now)
        try:
            return Claim(successor, self._replace(successor, etag))
        except ResourceModifiedError:
            # Another attempt changed it since we read it: it won the claim.
            raise AttemptInProgress(f"key {table_key(new.key)} was just claimed by another attempt") from None
        except ResourceNotFoundError:
            return None

    # Settling a claim.
    def renew(self, claim: Claim) -> None:
        """Extends a running attempt's lease (the lease keeper calls it)."""
        with claim.lock:
            if claim.settled or claim.lost:
                return
            record = claim.record.renewed(self._clock(), self._lease)
            self._settle(claim, record, "renew")

    def complete(self, claim: Claim) -> None:
        """The body returned: the key is done for the TTL."""
        self._keeper.drop(claim)
        with claim.lock:
            if not claim.lost:
                self._settle(claim, claim.record.completed(self._clock(), self._ttl), "complete")
            claim.settled = True

    def release(self, claim: Claim) -> None:
        """The body raised: forget the claim, so the message's retry may run at once."""
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError

        self._keeper.drop(claim)
        with claim.lock:
            claim.settled = True
            if claim.lost:
                return
            try:
                self._table.delete_entity(
                    claim.key,
                    table_key(claim.record.scope),
                    etag=claim.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except AzureError as error:  # the lease lapses on its own: the retry waits for it
                logger.warning("could not release idempotency key %s: %s", claim.key, error)

    def abandon(self, claim: Claim) -> None:
        """Stop renewing (the body was interrupted): like a crash, the claim lapses after its lease."""
        self._keeper.drop(claim)

    def _settle(self, claim: Claim, record: Record, step: str) -> None:
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        try:
            claim.etag = self._replace(record, claim.etag)
            claim.record = record
        except (ResourceModifiedError, ResourceNotFoundError):
            claim.lost = True
            logger.error(
                "idempotency key %s (message %s): another attempt took it over before %s; "
                "its lease (IDEMPOTENCY_IN_PROGRESS_SECONDS) ran out while this one still ran, "
                "so the body may have run twice",
                claim.key,
                record.message_id,
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
