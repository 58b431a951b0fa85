"""Handling: units of work run on the pass's own event loop, at most ``max_concurrency`` handlers at once.

``async def`` handlers run on that loop; plain functions on its thread pool. Either way
the same slots, heartbeat, FIFO order and budget apply. If a plain function returns an
awaitable, it is awaited: the message is done when the awaitable is.

A handler that raises fails its message, whatever it raises (``asyncio.CancelledError``
included), except ``KeyboardInterrupt`` and ``SystemExit``: those give the message back,
stop the pass (see drain_pass.py), and are raised again by ``drain`` once it has let go of
everything it holds; and ``DependencyUnavailable`` (message.py): not the message's failure,
so it runs again after a backoff, with no attempt counted.

Each unit is a task on the loop. It runs while it holds one of ``max_concurrency`` slots: a
slot is held while a handler runs, and for the pass's own calls around it (the attempt ledger,
a move to the DLQ). A unit that waits (a FIFO retry's backoff, a delete SQS has not answered
yet, a dependency that is down) leaves its slot, and takes one again when its wait is over,
before any unit not started yet. So waiting groups never keep other groups' handlers from
running. Waiting units stay in hand (held and heartbeated, acknowledging.py); at most
``waiting_limit`` wait at once before receiving pauses (``room_to_wait``), which bounds what a
pass holds, and what its heartbeats cost, however many groups fail.

Received messages wait in the prefetch buffer until a slot is free; each receive in
flight reserves its credits there (see sizing.py), so prefetching is bounded apart from
the slots. Once the pass stops starting work (``stop_starting``: budget, stop, interrupt),
every unit waiting for a slot, in the buffer or back from a wait, gives its messages back.

On FIFO a unit is one group's messages, run in order. The next message starts only once SQS
has confirmed the delete of the one before (handled, or moved to the DLQ): a refused delete
is retried while the group waits (acknowledging.py), and one never confirmed sends the rest
of the group back to SQS behind it, so nothing overtakes it. This costs a delete's round trip
between two messages of a group in one receive, and a delete call of their own when no other
group's delete shares it; the last message of a unit waits for nothing, since SQS itself
gives out no more of its group until its delete is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import inspect
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ..queues import SQS_BATCH_LIMIT, RedriveTarget
from .acknowledging import Acknowledger
from .attempts import PassLedger
from .dead_lettering import DeadLetterer
from .message import DependencyUnavailable, Handler, SqsMessage
from .observer import PassObserver
from .options import DrainOptions
from .sizing import Sizing
from .summary import Counts

logger = logging.getLogger(__name__)

Unit = list[SqsMessage]
T = TypeVar("T")

# Threads beyond the handlers' own, for the pass's calls made out of a slot (a ledger write when
# a waiting unit goes back, a ledger record dropped once its message is deleted).
CALLS_OUT_OF_SLOTS = 2
# A unit waiting for a time checks this often whether the pass ends.
WAIT_CHECK_SECONDS = 0.1


class Verdict(enum.Enum):
    """What comes after a failed attempt."""

    RETRY = "retry"  # FIFO: again, inside the pass
    MOVED = "moved"  # FIFO: sent to the DLQ; delete it
    GIVE_BACK = "give_back"  # to SQS, hidden for its backoff (or what is left of it)


class Outcome(enum.Enum):
    """What handling one message came to."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"  # DependencyUnavailable: not the message's failure, no attempt
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


class Slots:
    """The handler slots (on the loop only): units back from a wait are served before new ones."""

    def __init__(self, size: int) -> None:
        self.free = size
        self.back: deque[asyncio.Future[bool]] = deque()
        self.new: deque[asyncio.Future[bool]] = deque()
        self.closed = False  # no more slots are given: waiters get False

    async def take(self, *, new: bool = False) -> bool:
        """A slot, once one is free; False (and no slot) once ``close`` is called."""
        if self.closed:
            return False
        if self.free and not self.back and not self.new:
            self.free -= 1
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        (self.new if new else self.back).append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.give()  # granted as the task was being cancelled
            raise

    def give(self) -> None:
        """A slot freed: to the first waiter, if any."""
        for waiters in (self.back, self.new):
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(True)
                    return
        self.free += 1

    def close(self) -> None:
        self.closed = True
        for waiter in (*self.back, *self.new):
            if not waiter.done():
                waiter.set_result(False)
        self.back.clear()
        self.new.clear()


@dataclass
class Turn:
    """One unit's hold on a slot."""

    held: bool = False


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
        self.threads = ThreadPoolExecutor(
            options.max_concurrency + CALLS_OUT_OF_SLOTS, thread_name_prefix="sqs-handler"
        )
        self.loop = asyncio.new_event_loop()
        self.slots = Slots(options.max_concurrency)
        # Units out of their slot, waiting for a time or an answer (on the loop; read anywhere).
        self.waiting = 0
        # Receiving pauses while this many wait: the groups a pass holds, and heartbeats, stay bounded.
        self.waiting_limit = max(options.max_concurrency, SQS_BATCH_LIMIT)
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = asyncio.Event()
        self._thread = threading.Thread(target=self._serve, name="sqs-handlers-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, units: list[Unit]) -> None:
        """Queue units (thread-safe); each waits in the prefetch buffer for a free slot."""
        self.loop.call_soon_threadsafe(self._start_units, units)

    def stop_starting(self) -> None:
        """No message starts from now on (thread-safe): units waiting for a slot, in the prefetch
        buffer or back from a wait, give their messages back at once."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: no unit is left to stop
            self.loop.call_soon_threadsafe(self.slots.close)

    def room_to_wait(self) -> bool:
        """Fewer units wait out of their slots than ``waiting_limit``: receiving may go on."""
        return self.waiting < self.waiting_limit

    def close(self) -> None:
        """Wait for every unit, queued, waiting or running, then stop the loop and the threads."""
        try:
            if self._thread.is_alive():
                self.loop.call_soon_threadsafe(self.closing.set)
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
        await self.closing.wait()
        while self.tasks:  # a unit may start another task (a ledger record dropped) as it ends
            await asyncio.wait(set(self.tasks))

    def _start_units(self, units: list[Unit]) -> None:
        for unit in units:
            self._spawn(self._unit(unit))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # Not a handler's failure (those are caught): the acknowledger gives its messages back
            # as the pass closes.
            logger.error("a unit of work ended unexpectedly", exc_info=error)

    def _ending(self) -> bool:
        """No message starts from now on: the pass stops (budget, stop, interrupt)."""
        return self.slots.closed or self.stopping()

    async def _unit(self, unit: Unit) -> None:
        """One unit of work: it waits in the prefetch buffer for a slot, then runs."""
        turn = Turn(held=await self.slots.take(new=True))
        self.prefetch.give(len(unit))
        self.wake()
        try:
            await self._run(unit, turn)
        finally:
            if turn.held:
                self.slots.give()

    async def _run(self, unit: Unit, turn: Turn) -> None:
        if turn.held:
            unit = await self._with_earlier_attempts(unit)
        for position in range(len(unit)):
            if not turn.held or self._ending() or self._hold_ends_soon(unit[position]):
                # Never started: SQS may hand them out again at once.
                self.acks.change_visibility(unit[position:], 0)
                self.counts.add(released=len(unit) - position)
                return
            deleted = await self._settle(unit[position:], turn)
            if deleted is None:  # given back to SQS, the rest of its group behind it
                return
            if not await self._group_goes_on(deleted, unit[position + 1 :], turn):
                return

    async def _settle(self, unit: Unit, turn: Turn) -> Future[bool] | None:
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
        unavailable = 0  # runs in a row that found a dependency down
        while True:
            started = time.monotonic()
            outcome = await self._handle(attempt, unavailable)
            self.sizing.handler_seconds.add(time.monotonic() - started)
            if outcome is Outcome.SUCCEEDED:
                self.counts.add(succeeded=1)
                return self._delete(attempt, awaited)
            if outcome is Outcome.INTERRUPTED:
                # Not the message's fault: it and the rest of its unit may be handled again at once.
                # The run it lost is no attempt: the next receive counts one.
                uncounted = replace(attempt, uncounted_attempts=max(0, attempt.uncounted_attempts - 1))
                await self._give_back(unit, 0, uncounted, released=len(unit))
                return None
            if outcome is Outcome.UNAVAILABLE:
                # Not the message's failure either: no attempt; it runs again after a growing pause.
                unavailable += 1
                left = await self._wait(attempt, self.options.backoff_seconds(unavailable), turn)
                if left is None:
                    continue
                await self._give_back(unit, left, attempt, released=len(unit))
                return None
            unavailable = 0
            backoff = self.options.backoff_seconds(attempt.receive_count)
            verdict = await self._after_failure(attempt)
            if verdict is Verdict.MOVED:
                return self._delete(attempt, awaited)
            if verdict is Verdict.RETRY:
                left = await self._wait(attempt, backoff, turn)
                if left is None:
                    attempt = replace(attempt, uncounted_attempts=attempt.uncounted_attempts + 1)
                    continue
                backoff = left
            # The rest of a FIFO group must not overtake the failed message: it goes back with
            # it, in the same call, with the same backoff.
            await self._give_back(unit, backoff, attempt, released=len(rest))
            return None

    async def _group_goes_on(self, deleted: Future[bool], rest: Unit, turn: Turn) -> bool:
        """FIFO: whether the rest of the group may run, once SQS has answered the delete before it.

        The group waits for the answer out of its slot. Not confirmed (refused or failed through
        every retry): the message comes back, so the rest goes back to SQS now, behind it (SQS
        hands out none of them while it is in flight)."""
        if not self.fifo or not rest:
            return True
        if not deleted.done():
            await self._away(turn, asyncio.wrap_future(deleted))
        if deleted.result():
            return True
        self.acks.change_visibility(rest, 0)
        self.counts.add(released=len(rest))
        return False

    async def _after_failure(self, message: SqsMessage) -> Verdict:
        """FIFO: retry the failed ``message`` in the pass, or move it to the DLQ once it has had
        ``maxReceiveCount`` attempts. Else, and on a standard queue, give it back to SQS (the
        redrive policy takes over)."""
        target = await self._target()
        if target is None:  # a standard queue, or no redrive policy
            return Verdict.GIVE_BACK
        if message.receive_count >= target.max_receive_count:
            return await self._move_to_dlq(message, target)
        return Verdict.RETRY

    async def _wait(self, message: SqsMessage, seconds: int, turn: Turn) -> int | None:
        """Wait ``seconds`` out of the slot, then take one again: None, and ``message`` runs again.
        Else the seconds to give it back with: what is left of the wait when the pass ends first,
        or all of it when its hold would end before its next run could (SQS's 12 hours)."""
        if self.acks.hold_left(message) < seconds + self.options.visibility_timeout_seconds:
            return seconds
        due = time.monotonic() + seconds
        if await self._away(turn, self._until(due)) and turn.held:
            return None
        return max(0, math.ceil(due - time.monotonic()))

    async def _until(self, due: float) -> bool:
        """Sleep until ``due`` (a ``time.monotonic()`` instant); False as soon as the pass ends."""
        while (now := time.monotonic()) < due:
            if self._ending():
                return False
            await asyncio.sleep(min(WAIT_CHECK_SECONDS, due - now))
        return True

    async def _away(self, turn: Turn, wait: Awaitable[T]) -> T:
        """``wait`` awaited out of the unit's slot, then a slot taken again, before any unit not
        started yet; unless the pass ends meanwhile (``turn.held`` says which)."""
        if turn.held:
            turn.held = False
            self.slots.give()
        self.waiting += 1
        self.counts.peaks(waiting=self.waiting)
        try:
            result = await wait
            if not self._ending():
                turn.held = await self.slots.take()
            return result
        finally:
            self.waiting -= 1
            self.wake()

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
        return self._delete(message, awaited)

    def _delete(self, message: SqsMessage, awaited: bool) -> Future[bool]:
        deleted = self.acks.delete(message, awaited=awaited)
        if message.message_id in self.recorded:
            self.recorded.discard(message.message_id)
            # Off the group's path: the record goes once SQS has confirmed the delete.
            self._spawn(self._forget(message.message_id, deleted))
        return deleted

    async def _forget(self, message_id: str, deleted: Future[bool]) -> None:
        if await asyncio.wrap_future(deleted):
            await self.loop.run_in_executor(self.threads, self.ledger.forget, [message_id])

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

    async def _handle(self, message: SqsMessage, unavailable: int) -> Outcome:
        """One run of the handler; ``unavailable``: the runs before it, in a row, that found a
        dependency down."""
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
        except DependencyUnavailable as error:
            self.counts.add(unavailable=1)
            logger.warning(
                "message %s: a dependency is unavailable (%s: %s), not the message's failure; run again "
                "in %d s, no attempt counted",
                message.message_id,
                type(error).__name__,
                error,
                self.options.backoff_seconds(unavailable + 1),
            )
            return Outcome.UNAVAILABLE
        except BaseException:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this unit itself is being cancelled, not the handler's own doing
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
