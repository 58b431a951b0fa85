"""Keeps the leases of running attempts alive, as the consumer's heartbeat keeps their messages hidden.

One thread per store, only while attempts run: it renews each claim a third of a lease
after its last renewal, so a live attempt keeps its key however long its body runs,
even when a renewal call fails once. A crashed process renews nothing: its lease lapses
within one lease, and a later delivery takes the key over.
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
    def __init__(self, renew: Callable[[Claim], None], *, every_seconds: float) -> None:
        self._renew = renew
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
                    self._renew(claim)
                except Exception:  # the next renewal, a third of a lease later, tries again
                    logger.warning("could not renew an idempotency lease", exc_info=True)
