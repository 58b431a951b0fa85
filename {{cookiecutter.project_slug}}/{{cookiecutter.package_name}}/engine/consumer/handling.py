"""Handling: units of work run on the pass's own event loop, at most ``max_concurrency`` at once.

``async def`` handlers run on that loop; plain functions on its thread pool. Either way
the same slots, heartbeat, FIFO order and budget apply. If a plain function returns an
awaitable, it is awaited: the message is done when the awaitable is.

A handler that raises fails its message, whatever it raises (``asyncio.CancelledError``
included), except ``KeyboardInterrupt`` and ``SystemExit``: those give the message back,
stop the pass (see drain_pass.py), and are raised again by ``drain`` once it has let go of
everything it holds.

Received messages wait in the prefetch buffer until a slot is free; each receive in
flight reserves its credits there (see sizing.py), so prefetching is bounded apart from
the slots.

On FIFO a unit is one group's messages, run in order in one slot. The next message starts
only once SQS has confirmed the delete of the one before (handled, or moved to the DLQ): a
refused delete is retried while the group waits (acknowledging.py), and one never confirmed
sends the rest of the group back to SQS behind it, so nothing overtakes it. This costs a
delete's round trip between two messages of a group in one receive, and a delete call of
their own when no other group's delete shares it; the last message of a unit waits for
nothing, since SQS itself gives out no more of its group until its delete is done.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from enum import Enum
from typing import Any

from .acknowledging import Acknowledger
from .dead_lettering import DeadLetterer
from .message import Handler, SqsMessage
from .observer import PassObserver
from .options import DrainOptions
from .sizing import Sizing
from .summary import Counts

logger = logging.getLogger(__name__)

Unit = list[SqsMessage]


class Outcome(Enum):
    """What handling one message came to."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # KeyboardInterrupt or SystemExit: the pass stops


class Prefetch:
    """Credits for messages being received or waiting for a slot."""

    def __init__(self) -> None:
        self._in_use = 0
        self._lock = threading.Lock()

    def reserve(self, count: int, limit: int) -> bool:
        with self._lock:
            if self._in_use + count > limit:
                return False
            self._in_use += count
            return True

    def give(self, count: int) -> None:
        with self._lock:
            self._in_use -= count


def is_async(handler: Handler) -> bool:
    """An ``async def`` function, or an object whose ``__call__`` is one."""
    call = type(handler).__call__
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


class Handlers:
    def __init__(
        self,
        *,
        handler: Handler,
        options: DrainOptions,
        counts: Counts,
        sizing: Sizing,
        acks: Acknowledger,
        prefetch: Prefetch,
        stopping: Callable[[], bool],
        interrupt: Callable[[BaseException], None],
        wake: Callable[[], None],
        observer: PassObserver | None = None,
        dead_letters: DeadLetterer | None = None,
        fifo: bool = False,
    ) -> None:
        self.handler = handler
        self.fifo = fifo
        self.observer = observer or PassObserver()
        self.run_on_loop = is_async(handler)
        self.options = options
        self.counts = counts
        self.sizing = sizing
        self.acks = acks
        self.prefetch = prefetch
        self.stopping = stopping
        self.interrupt = interrupt
        # FIFO only: retry failures inside the pass, then dead-letter them (dead_lettering.py).
        self.dead_letters = dead_letters
        self.wake = wake
        self.threads = ThreadPoolExecutor(options.max_concurrency, thread_name_prefix="sqs-handler")
        self.loop = asyncio.new_event_loop()
        # Units waiting for a slot: the prefetch buffer. None closes one slot.
        self.units: asyncio.Queue[Unit | None] = asyncio.Queue()
        self._thread = threading.Thread(target=self._serve, name="sqs-handlers-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, units: list[Unit]) -> None:
        """Queue units (thread-safe); each waits in the prefetch buffer for a free slot."""
        for unit in units:
            self.loop.call_soon_threadsafe(self.units.put_nowait, unit)

    def take_queued(self) -> list[Unit]:
        """Units not started yet, taken out of the buffer (thread-safe)."""
        return asyncio.run_coroutine_threadsafe(self._take_queued(), self.loop).result()

    def close(self) -> None:
        """Wait for every queued and running unit, then stop the loop and the threads."""
        try:
            if self._thread.is_alive():
                for _ in range(self.options.max_concurrency):
                    self.loop.call_soon_threadsafe(self.units.put_nowait, None)
                self._thread.join()
        finally:
            self.threads.shutdown(wait=True)

    # On the loop.

    def _serve(self) -> None:
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        workers = [asyncio.create_task(self._slot()) for _ in range(self.options.max_concurrency)]
        await asyncio.gather(*workers)

    async def _take_queued(self) -> list[Unit]:
        taken, closing = [], 0
        while not self.units.empty():
            unit = self.units.get_nowait()
            if unit is None:
                closing += 1
            else:
                taken.append(unit)
        for _ in range(closing):
            self.units.put_nowait(None)
        for unit in taken:
            self.prefetch.give(len(unit))
        return taken

    async def _slot(self) -> None:
        """One handler slot: takes the next unit, runs it, again until closed."""
        while (unit := await self.units.get()) is not None:
            self.prefetch.give(len(unit))
            self.wake()
            await self._run(unit)

    async def _run(self, unit: Unit) -> None:
        for position, message in enumerate(unit):
            if self.stopping():
                # Never started: SQS may hand them out again at once.
                self.acks.change_visibility(unit[position:], 0)
                self.counts.add(released=len(unit) - position)
                return
            attempt = message
            while True:
                started = time.monotonic()
                outcome = await self._handle(attempt)
                self.sizing.handler_seconds.add(time.monotonic() - started)
                awaited = self.fifo and position + 1 < len(unit)  # the rest of its group waits
                if outcome is Outcome.SUCCEEDED:
                    self.counts.add(succeeded=1)
                    deleted = self.acks.delete(attempt, awaited=awaited)
                    break
                if outcome is Outcome.INTERRUPTED:
                    # Not the message's fault: it and the rest of its unit may be handled again at once.
                    self.acks.change_visibility(unit[position:], 0)
                    self.counts.add(released=len(unit) - position)
                    return
                backoff = self.options.backoff_seconds(attempt.receive_count)
                retry = await self._retry_in_pass(attempt, backoff)
                if retry is None:  # moved to the DLQ: deleted, and its group goes on
                    deleted = self.acks.delete(attempt, awaited=awaited)
                    break
                if retry is attempt:
                    # The rest of a FIFO group must not overtake the failed message: it goes back
                    # with it, in the same call, with the same backoff.
                    self.acks.change_visibility(unit[position:], backoff)
                    self.counts.add(released=len(unit) - position - 1)
                    return
                attempt = retry
            if not await self._group_goes_on(deleted, unit[position + 1 :]):
                return

    async def _group_goes_on(self, deleted: Future[bool], rest: Unit) -> bool:
        """FIFO: whether the rest of the group may run, once SQS has answered the delete before it.

        Not confirmed (refused or failed through every retry): the message comes back, so the
        rest goes back to SQS now, behind it (SQS hands out none of them while it is in flight)."""
        if not self.fifo or not rest:
            return True
        if await asyncio.wrap_future(deleted):
            return True
        self.acks.change_visibility(rest, 0)
        self.counts.add(released=len(rest))
        return False

    async def _retry_in_pass(self, message: SqsMessage, backoff: int) -> SqsMessage | None:
        """FIFO: the message to try again after its backoff (its group waits, heartbeated), or
        None once the consumer moved it to the DLQ. ``message`` itself: give it back to SQS."""
        if self.dead_letters is None:
            return message
        target = await self.loop.run_in_executor(self.threads, self.dead_letters.target)
        if target is None:
            return message
        if message.receive_count >= target.max_receive_count:
            if await self.loop.run_in_executor(self.threads, self.dead_letters.move, message, target):
                return None
            return message
        retry_at = time.monotonic() + backoff
        while time.monotonic() < retry_at:
            if self.stopping():
                return message  # the budget or a stop ends the wait: the redrive policy takes over
            await asyncio.sleep(min(0.1, retry_at - time.monotonic()))
        return replace(message, retries_in_pass=message.retries_in_pass + 1)

    async def _handle(self, message: SqsMessage) -> Outcome:
        try:
            with self.observer.handling(message):
                if self.run_on_loop:
                    result: Any = self.handler(message)
                else:
                    # The handler's thread runs in this task's context: its spans nest in the message's.
                    context = contextvars.copy_context()
                    result = await self.loop.run_in_executor(self.threads, context.run, self.handler, message)
                if inspect.isawaitable(result):
                    await result
        except (KeyboardInterrupt, SystemExit) as error:
            self.interrupt(error)
            return Outcome.INTERRUPTED
        except BaseException:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this slot itself is being cancelled, not the handler's own doing
            self.counts.add(failed=1)
            logger.warning(
                "message %s failed on attempt %d; retried in %d s",
                message.message_id,
                message.receive_count,
                self.options.backoff_seconds(message.receive_count),
                exc_info=True,
            )
            return Outcome.FAILED
        return Outcome.SUCCEEDED
