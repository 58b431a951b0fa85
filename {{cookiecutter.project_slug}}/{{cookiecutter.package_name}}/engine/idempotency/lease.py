"""Tends this process's claims: keeps running attempts' leases alive, and finishes what ended ones left.

One thread per store, only while it has claims: every third of a lease it calls the
store's ``tend`` for each claim, which renews the lease of a running attempt (so a live
attempt keeps its key however long its body runs, even when a renewal call fails once),
and tries again to record the end of an attempt whose completion or release the store
refused, until that lands or the lease lapses. ``tend`` says whether to come back.
A crashed process renews nothing: its lease lapses within one lease, and a later
delivery takes the key over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .table_store import Claim

logger = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, tend: Callable[[Claim], bool], *, every_seconds: float) -> None:
        self._tend = tend
        self._every = every_seconds
        self._due: dict[Claim, float] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def keep(self, claim: Claim) -> None:
        with self._changed:
            self._due[claim] = time.monotonic() + self._every
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="idempotency-leases", daemon=True)
                self._thread.start()
            self._changed.notify()

    def drop(self, claim: Claim) -> None:
        with self._changed:
            self._due.pop(claim, None)
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                if not self._due:
                    self._thread = None  # the next keep() starts another
                    return
                now = time.monotonic()
                due = [claim for claim, at in self._due.items() if at <= now]
                if not due:
                    self._changed.wait(timeout=min(self._due.values()) - now)
                    continue
                for claim in due:
                    self._due[claim] = now + self._every
            for claim in due:
                try:
                    again = self._tend(claim)
                except Exception:  # a third of a lease later, it tries again
                    logger.warning("could not tend an idempotency claim", exc_info=True)
                    again = True
                if not again:
                    self.drop(claim)
