"""Leases on drain-pass slots: how many passes run, and a hard bound on them.

A pass runs only while it holds a slot: the tick's pass the slot ``tick``, a token's pass one of
``token-0001`` .. ``token-<SQS_SCALE_OUT_MAX_WORKERS>``. A slot is a Table entity in the app's
storage account (partition: the input queue), claimed by an insert, or by an update conditional
on the ETag of an expired lease, so of two claimants exactly one wins. So at no time do more
passes receive than the cap plus the tick's own, whatever ticks, samples and tokens overlap,
repeat or fail: a token with no free slot is dropped unrun.

Why a Table entity: the app already reaches its account's tables (idempotency), one query counts
every running pass, and the ETag makes claiming atomic. A blob lease expires by itself, but
counting them needs a listing plus another client library.

A pass renews its lease at each progress sample (``SAMPLE_EVERY_SECONDS``); a pass that stops renewing
(a crashed instance) frees its slot ``LEASE_SECONDS`` later. A pass whose renewal fails stops
receiving, since its slot may be taken.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..queues import queue_name

if TYPE_CHECKING:
    from azure.data.tables import TableClient

logger = logging.getLogger(__name__)

TABLE = "sqsdrainpasses"
# The drain's progress period: each sample renews the lease (and the tick's may top the tokens up).
SAMPLE_EVERY_SECONDS = 5.0
# Six samples: one or two missed renewals do not free a running pass's slot.
LEASE_SECONDS = 6 * SAMPLE_EVERY_SECONDS
# A renewal that fails is retried at the next sample only if the lease outlives it.
RENEW_MARGIN_SECONDS = 10.0
TICK_SLOT = "tick"
TOKEN_SLOT_PREFIX = "token-"  # noqa: S105 (a drain token, not a secret)


def token_slot(number: int) -> str:
    return f"{TOKEN_SLOT_PREFIX}{number:04d}"


@dataclass
class Lease:
    """One pass's hold on a slot; ``lost`` is set once it may no longer hold it."""

    slots: PassSlots
    slot: str
    owner: str
    etag: str
    lost: threading.Event

    expires_at: float

    def renew(self) -> bool:
        """Extend the lease; False (and ``lost`` set) once the slot may be another pass's.

        A failed renewal is retried at the next sample while the lease has a sample's time left;
        a changed ETag (412) means another pass took the slot over.
        """
        if self.lost.is_set():
            return False
        now = self.slots.clock()
        try:
            self.etag = self.slots.write(self.slot, self.owner, etag=self.etag)
        except Exception as error:
            taken = getattr(error, "status_code", None) == 412
            if not taken and now + RENEW_MARGIN_SECONDS < self.expires_at:
                logger.warning("drain pass could not renew its %s slot, retrying: %s", self.slot, error)
                return True
            logger.warning("drain pass lost its %s slot (%s): it stops receiving", self.slot, error)
            self.lost.set()
            return False
        self.expires_at = now + LEASE_SECONDS
        return True

    def on_progress(self, _summary: object) -> None:
        """A drain's progress callback: each sample renews the lease."""
        self.renew()

    def release(self) -> None:
        if not self.lost.is_set():
            self.slots.delete(self.slot, self.etag)


@dataclass(frozen=True)
class SlotLease:
    etag: str
    live: bool


class PassSlots:
    """The slots of one input queue's passes in a table. Thread-safe as the SDK client is."""

    def __init__(self, table: TableClient, queue: str, *, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._partition = queue_name(queue)
        self._clock = clock

    def clock(self) -> float:
        return self._clock()

    def claim(self, slots: list[str]) -> Lease | None:
        """The first of ``slots`` free (never held, or its lease expired), or None when all are held."""
        from azure.core.exceptions import HttpResponseError

        now = self._clock()
        leases = self._leases()
        owner = uuid.uuid4().hex
        for slot in slots:
            existing = leases.get(slot)
            if existing and existing.live:
                continue
            try:
                etag = self.write(slot, owner, etag=existing.etag if existing else None)
            except HttpResponseError as error:
                if error.status_code in (409, 412):  # taken meanwhile: by an insert, or a take-over
                    continue
                raise  # refused (a missing role, say): the caller must not guess
            return Lease(self, slot, owner, etag, threading.Event(), now + LEASE_SECONDS)
        return None

    def running(self, prefix: str = TOKEN_SLOT_PREFIX) -> int:
        """Passes holding a live lease on a slot named ``prefix...``."""
        return sum(1 for slot, lease in self._leases().items() if lease.live and slot.startswith(prefix))

    def write(self, slot: str, owner: str, *, etag: str | None) -> str:
        """Insert the slot's lease (no ``etag``), or replace it if unchanged since ``etag``; the new ETag."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        entity = {
            "PartitionKey": self._partition,
            "RowKey": slot,
            "Owner": owner,
            "ExpiresAt": self._clock() + LEASE_SECONDS,
        }
        if etag is None:
            from ..storage_tables import with_table

            metadata = with_table(self._table, lambda: self._table.create_entity(entity))
        else:
            metadata = self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        return str(metadata["etag"])

    def delete(self, slot: str, etag: str) -> None:
        from azure.core import MatchConditions

        with contextlib.suppress(Exception):  # an expired lease frees the slot anyway
            self._table.delete_entity(
                self._partition, slot, etag=etag, match_condition=MatchConditions.IfNotModified
            )

    def _leases(self) -> dict[str, SlotLease]:
        from azure.core.exceptions import ResourceNotFoundError

        now = self._clock()
        try:
            entities = list(
                self._table.query_entities(
                    "PartitionKey eq @partition", parameters={"partition": self._partition}
                )
            )
        except ResourceNotFoundError:  # no pass made the table yet
            return {}
        return {
            str(entity["RowKey"]): SlotLease(
                etag=str(entity.metadata["etag"]), live=float(entity.get("ExpiresAt", 0.0)) > now
            )
            for entity in entities
        }


def pass_slots(
    queue: str, environ: Mapping[str, str] | None = None, *, clock: Callable[[], float] = time.time
) -> PassSlots:
    """The slots of ``queue``'s passes in the ``AzureWebJobsStorage`` account."""
    return PassSlots(passes_table(environ), queue, clock=clock)


def passes_table(environ: Mapping[str, str] | None = None) -> TableClient:
    """The table of the slots, in the ``AzureWebJobsStorage`` account; the watchdog keeps its record there.
    A tick waits on its slot before it drains: an unreachable account fails in seconds, not minutes."""
    # At the first pass, not when the host indexes the app (benchmarks/cold_start.py).
    from ..storage_account import storage_address
    from ..storage_tables import quick_table_client

    return quick_table_client(storage_address("table", "the drain passes' leases", environ), TABLE)


def reset_pass_slot_clients() -> None:
    """Forget cached clients (tests, or after rotating settings)."""
    from ..storage_tables import reset_table_clients

    reset_table_clients()
