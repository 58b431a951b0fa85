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
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from enum import Enum
from typing import Any

from ..queues import RedriveTarget
from .acknowledging import Acknowledger
from .attempts import PassLedger
from .dead_lettering import DeadLetterer
from .message import Handler, SqsMessage
from .observer import PassObserver
from .options import DrainOptions
from .sizing import Sizing
from .summary import Counts

logger = logging.getLogger(__name__)

Unit = list[SqsMessage]


class Verdict(Enum):
    """What comes after a failed attempt."""

    RETRY = "retry"  # FIFO: again, inside the pass
    MOVED = "moved"  # FIFO: sent to the DLQ; delete it
    GIVE_BACK = "give_back"  # to SQS, hidden for its backoff (or what is left of it)


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
        ledger: PassLedger | None = None,
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
        # FIFO: the attempts SQS did not count, across passes (attempts.py).
        self.ledger = ledger or PassLedger(None, counts)
        self.recorded: set[str] = set()  # message IDs the ledger has a record of
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
        unit = await self._with_earlier_attempts(unit)
        for position in range(len(unit)):
            if self.stopping() or self._hold_ends_soon(unit[position]):
                # Never started: SQS may hand them out again at once.
                self.acks.change_visibility(unit[position:], 0)
                self.counts.add(released=len(unit) - position)
                return
            deleted = await self._settle(unit[position:])
            if deleted is None:  # given back to SQS, the rest of its group behind it
                return
            if not await self._group_goes_on(deleted, unit[position + 1 :]):
                return

    async def _settle(self, unit: Unit) -> Future[bool] | None:
        """Handle ``unit[0]`` until it succeeds or is moved to the DLQ, then delete it; returns
        the delete. None: it went back to SQS, with the rest of ``unit`` (its group) behind it."""
        attempt, rest = unit[0], unit[1:]
        awaited = self.fifo and bool(rest)  # the rest of its group waits for its delete
        if attempt.uncounted_attempts and await self._used_up(attempt):
            # Its attempts ran out in an earlier pass, which could not delete it (a crash around
            # its move to the DLQ): move it again, without running it.
            moved = await self._moved(attempt, awaited)
            if moved is None:
                await self._give_back(unit, 0, attempt, released=len(unit))
            return moved
        while True:
            started = time.monotonic()
            outcome = await self._handle(attempt)
            self.sizing.handler_seconds.add(time.monotonic() - started)
            if outcome is Outcome.SUCCEEDED:
                self.counts.add(succeeded=1)
                return await self._delete(attempt, awaited)
            if outcome is Outcome.INTERRUPTED:
                # Not the message's fault: it and the rest of its unit may be handled again at once.
                # The run it lost is no attempt: the next receive counts one.
                uncounted = replace(attempt, uncounted_attempts=max(0, attempt.uncounted_attempts - 1))
                await self._give_back(unit, 0, uncounted, released=len(unit))
                return None
            backoff = self.options.backoff_seconds(attempt.receive_count)
            verdict, seconds = await self._retry_in_pass(attempt, backoff)
            if verdict is Verdict.MOVED:
                return await self._delete(attempt, awaited)
            if verdict is Verdict.GIVE_BACK:
                # The rest of a FIFO group must not overtake the failed message: it goes back
                # with it, in the same call, with the same backoff.
                await self._give_back(unit, seconds, attempt, released=len(rest))
                return None
            attempt = replace(attempt, uncounted_attempts=attempt.uncounted_attempts + 1)

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

    async def _retry_in_pass(self, message: SqsMessage, backoff: int) -> tuple[Verdict, int]:
        """FIFO: retry the failed ``message`` after its backoff (its group waits, heartbeated), or
        move it to the DLQ once it has had ``maxReceiveCount`` attempts. Else, and on a standard
        queue, give it back to SQS (the redrive policy takes over), with the visibility to give it."""
        target = await self._target()
        if target is None:  # a standard queue, or no redrive policy
            return Verdict.GIVE_BACK, backoff
        if message.receive_count >= target.max_receive_count:
            return await self._move_to_dlq(message, target), backoff
        if self.acks.hold_left(message) < backoff + self.options.visibility_timeout_seconds:
            # SQS would not keep it hidden through the wait and its next run (12 hours from its
            # receive): it goes back now, hidden for what is left of its hold at most.
            return Verdict.GIVE_BACK, backoff
        retry_at = time.monotonic() + backoff
        while (now := time.monotonic()) < retry_at:
            if self.stopping():
                # The budget or a stop ends the wait: SQS keeps it hidden for what is left of it.
                return Verdict.GIVE_BACK, math.ceil(retry_at - now)
            await asyncio.sleep(min(0.1, retry_at - now))
        return Verdict.RETRY, 0

    async def _move_to_dlq(self, message: SqsMessage, target: RedriveTarget) -> Verdict:
        if message.uncounted_attempts:
            # Written before the move: a crash between the move and its delete cannot run it again.
            await self._note(message, message.uncounted_attempts)
        dead_letters = self.dead_letters
        if dead_letters is None:
            return Verdict.GIVE_BACK
        moved = await self.loop.run_in_executor(self.threads, dead_letters.move, message, target)
        return Verdict.MOVED if moved else Verdict.GIVE_BACK

    def _hold_ends_soon(self, message: SqsMessage) -> bool:
        """Too little of ``message``'s hold is left to run it (a visibility timeout): SQS would
        let another consumer have it midway (12 hours from its receive)."""
        if self.acks.hold_left(message) >= self.options.visibility_timeout_seconds:
            return False
        logger.warning(
            "message %s given back unstarted: its hold (12 h from its receive) ends", message.message_id
        )
        return True

    async def _target(self) -> RedriveTarget | None:
        if self.dead_letters is None:
            return None
        return await self.loop.run_in_executor(self.threads, self.dead_letters.target)

    async def _used_up(self, message: SqsMessage) -> bool:
        target = await self._target()
        return target is not None and message.receive_count > target.max_receive_count

    async def _moved(self, message: SqsMessage, awaited: bool) -> Future[bool] | None:
        """``message`` sent to the DLQ without running it, and deleted; None if the move failed."""
        dead_letters, target = self.dead_letters, await self._target()
        if dead_letters is None or target is None:
            return None
        if not await self.loop.run_in_executor(self.threads, dead_letters.move, message, target):
            return None
        return await self._delete(message, awaited)

    async def _delete(self, message: SqsMessage, awaited: bool) -> Future[bool]:
        deleted = self.acks.delete(message, awaited=awaited)
        if message.message_id in self.recorded and await asyncio.wrap_future(deleted):
            await self.loop.run_in_executor(self.threads, self.ledger.forget, [message.message_id])
            self.recorded.discard(message.message_id)
        return deleted

    async def _give_back(self, unit: Unit, seconds: int, attempt: SqsMessage, *, released: int) -> None:
        """Hand ``unit`` back to SQS, hidden ``seconds`` more; ``attempt`` is its first message as
        it stands: its uncounted attempts are written down first, so no pass sees it without them."""
        if attempt.uncounted_attempts or attempt.message_id in self.recorded:
            await self._note(attempt, attempt.uncounted_attempts)
        self.acks.change_visibility(unit, seconds)
        self.counts.add(released=released)

    async def _note(self, message: SqsMessage, uncounted: int) -> None:
        await self.loop.run_in_executor(self.threads, self.ledger.note, {message.message_id: uncounted})
        self.recorded.add(message.message_id)

    async def _with_earlier_attempts(self, unit: Unit) -> Unit:
        """FIFO: the unit with the uncounted attempts of messages SQS delivered before (the ledger)."""
        again = [m.message_id for m in unit if self.fifo and m.sqs_receive_count > 1]
        if not again:
            return unit
        found = await self.loop.run_in_executor(self.threads, self.ledger.recall, again)
        self.recorded.update(found)
        return [replace(m, uncounted_attempts=found.get(m.message_id, 0)) for m in unit]

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
