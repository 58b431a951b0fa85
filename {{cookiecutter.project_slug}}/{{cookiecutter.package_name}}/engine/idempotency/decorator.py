"""``@idempotent()``: a handler's body runs at most once per key within the TTL.

    @idempotent()                                       # key: the SQS message ID
    @idempotent(key=lambda m: WorkItem.from_message(m).id)   # key: a field of the body

Per delivery: claim the key, run the body, mark it complete. A key already complete
skips the body (the message succeeds and is deleted). A key another attempt holds
raises ``AttemptInProgress``: a failure, so SQS redelivers the message after its
backoff, when the other attempt has finished. A body that raises releases the key and
re-raises, so the retry runs at once.

Storage failing is never the message's fault (table_store.py retries it for a window of
a third of the lease, at most 20 s): a success stays a success, as the handler returns
even when the completion could not be recorded (logged with the key); a failed release
lets the body's own error through, and a retry in this process takes the key over at
once; a claim that storage refuses for the whole window raises ``StoreUnavailable``
before the body runs, so the message fails and is handed out again.

Works on sync and async handlers; an async one makes its table calls, and sleeps
between their retries, in a worker thread (``asyncio.to_thread``), never on the loop.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, cast, overload

from ..consumer import SqsMessage
from .table_store import Claim, TableStore

logger = logging.getLogger(__name__)

KeyFunction = Callable[[SqsMessage], str]
SyncHandler = Callable[[SqsMessage], None]
AsyncHandler = Callable[[SqsMessage], Coroutine[Any, Any, None]]


def message_id(message: SqsMessage) -> str:
    """The default key: SQS's ID of the message, the same on every redelivery of it."""
    return message.message_id


def idempotent(
    *, key: KeyFunction = message_id, scope: str | None = None, store: TableStore | None = None
) -> Idempotent:
    """A decorator for a handler. ``scope`` (default: the handler's module and name) keeps the
    keys of two handlers apart; ``store`` defaults to the app's storage account and settings."""
    return Idempotent(key, scope, store)


class Idempotent:
    def __init__(self, key: KeyFunction, scope: str | None, store: TableStore | None) -> None:
        self._key = key
        self._scope = scope
        self._store = store
        self._store_lock = threading.Lock()

    @overload
    def __call__(self, handler: AsyncHandler) -> AsyncHandler: ...
    @overload
    def __call__(self, handler: SyncHandler) -> SyncHandler: ...
    def __call__(self, handler: SyncHandler | AsyncHandler) -> SyncHandler | AsyncHandler:
        scope = self._scope or f"{handler.__module__}.{handler.__qualname__}"
        if inspect.iscoroutinefunction(handler):
            body = cast("AsyncHandler", handler)

            @functools.wraps(body)
            async def run_async(message: SqsMessage) -> None:
                claim = await asyncio.to_thread(self._begin, message, scope)
                if claim is None:
                    return
                try:
                    await body(message)
                except Exception:
                    await asyncio.to_thread(self.store.release, claim)
                    raise
                except BaseException:  # cancelled: like a crash, the claim lapses after its lease
                    self.store.abandon(claim)
                    raise
                await asyncio.to_thread(self.store.complete, claim)

            return run_async

        sync_body = cast("SyncHandler", handler)

        @functools.wraps(sync_body)
        def run(message: SqsMessage) -> None:
            claim = self._begin(message, scope)
            if claim is None:
                return
            try:
                sync_body(message)
            except Exception:
                self.store.release(claim)
                raise
            except BaseException:
                self.store.abandon(claim)
                raise
            self.store.complete(claim)

        return run

    @property
    def store(self) -> TableStore:
        """Built at the first message, from the settings then in the environment."""
        with self._store_lock:
            if self._store is None:
                self._store = TableStore.from_environment()
            return self._store

    def _begin(self, message: SqsMessage, scope: str) -> Claim | None:
        key = self._key(message)  # a key function that raises fails the message like the body would
        claim = self.store.claim(key, scope, message.message_id)
        if claim is None:
            logger.info("message %s: its key is done already; skipping the body", message.message_id)
        return claim
