"""One drain pass: receive -> hold -> prefetch -> handle -> acknowledge, within a budget.

The pass's own thread decides when a receive may go out: while the sizing allows more
receives in flight (sizing.py), prefetch credits are free, deletes keep up
(acknowledging.py), and fewer units wait out of their handler slots than the bound
(handling.py). Otherwise receiving waits: backpressure. It stops receiving when the queue
has looked empty for the linger (receiving.py), the budget is spent, ``stop`` is set, or
SQS keeps failing; then it waits for the running and waiting units and for every ack.

The queue looks empty when a receive says so, never because of what the pass holds. On a
FIFO queue a group held in hand (retrying a failure, running a slow handler, waiting for
its delete) hides its next messages, so an empty receive proves the queue empty only if it
went out while the pass held nothing and no other receive was in flight (one may bring a
group); until then the pass keeps polling for the other groups, at least
``HELD_POLL_SECONDS`` a poll (a held group may wait for minutes: no busy polling), so a
failing or slow group never holds up the receiving of another.

However it ends (a handler's ``KeyboardInterrupt`` or ``SystemExit`` included, which stop
it like ``stop`` and are raised again at the end), a pass joins every thread it started
and deletes or gives back every message it received.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..queues import SQS_BATCH_LIMIT
from .acknowledging import Acknowledger
from .attempts import AttemptLedger, PassLedger
from .dead_lettering import DeadLetterer
from .fifo import by_group, ordering_for
from .handling import Handlers, Prefetch, Unit
from .message import Handler, SqsMessage
from .observer import PassObserver
from .options import DrainOptions
from .receiving import RECEIVE_ERRORS_BEFORE_GIVING_UP, Polling, PollWhileBusy, Receiver
from .sizing import Sizing, fit_to_pool
from .summary import Counts, DrainSummary

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

# The pass's thread re-checks stop, budget and progress at least this often.
CHECK_EVERY_SECONDS = 0.05
# How often a pass reports its counts to ``progress`` unless told otherwise.
PROGRESS_EVERY_SECONDS = 5.0
# FIFO: while the pass holds messages, a poll waits at least this long, or the linger if longer.
HELD_POLL_SECONDS = 1
# Stops after which messages not started yet go back to SQS at once.
RELEASE_WHEN_STOPPED_BECAUSE = ("stop_requested", "budget", "interrupted")


def drain(
    client: SQSClient,
    queue_url: str,
    handler: Handler,
    options: DrainOptions,
    *,
    stop: threading.Event | None = None,
    progress: Callable[[DrainSummary], None] | None = None,
    progress_every_seconds: float = PROGRESS_EVERY_SECONDS,
    observer: PassObserver | None = None,
    poll_until: float | None = None,
    busy: PollWhileBusy | None = None,
    attempts: AttemptLedger | None = None,
) -> DrainSummary:
    """Drain ``queue_url`` once; returns what happened. Never raises for a handler's error.

    ``handler`` may be a plain function or an ``async def``. A handler's ``KeyboardInterrupt`` or
    ``SystemExit`` ends the pass as ``stop`` does, and is raised once every message is
    given back. Setting ``stop`` ends receiving
    (within one poll); running handlers finish, and messages received but not started are
    released at once. ``progress``, if given, gets the counts so far every
    ``progress_every_seconds`` while receiving goes on. ``observer`` is told of the pass,
    each receive and each handler run (telemetry). ``poll_until`` (a ``time.monotonic()`` instant, within
    the budget) keeps the pass polling until then even when the queue is empty; ``busy``, only while
    messages keep coming (receiving.py). ``attempts`` (FIFO) keeps the attempts SQS does not count
    across passes (attempts.py).
    """
    pool_size = getattr(client.meta.config, "max_pool_connections", None) or 10  # botocore's default
    options = fit_to_pool(options, pool_size)
    stop = stop or threading.Event()
    observer = observer or PassObserver()
    return _Pass(
        client,
        queue_url,
        handler,
        options,
        stop,
        observer=observer,
        poll_until=poll_until,
        busy=busy,
        attempts=attempts,
    ).run(progress, progress_every_seconds)


class _Pass:
    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        handler: Handler,
        options: DrainOptions,
        stop: threading.Event,
        *,
        observer: PassObserver,
        poll_until: float | None,
        busy: PollWhileBusy | None = None,
        attempts: AttemptLedger | None = None,
    ) -> None:
        self.options = options
        self.observer = observer
        self.stop = stop
        self.ordering = ordering_for(queue_url)
        self.counts = Counts()
        self.started = self.counts.started
        self.deadline = self.started + options.budget_seconds
        self.batch = min(SQS_BATCH_LIMIT, options.max_concurrency)
        self.sizing = Sizing(options)
        self.polling = Polling(options, self.started, poll_until, busy)
        self.woken = threading.Event()
        self.prefetch = Prefetch()
        self.receiver = Receiver(client, queue_url, options, self.counts, self.sizing)
        self.acks = Acknowledger(
            client=client,
            queue_url=queue_url,
            options=options,
            counts=self.counts,
            sizing=self.sizing,
            ordering=self.ordering,
            wake=self.woken.set,
            observer=observer,
        )
        self.handlers = Handlers(
            handler=handler,
            options=options,
            counts=self.counts,
            sizing=self.sizing,
            acks=self.acks,
            prefetch=self.prefetch,
            stopping=self._stopping,
            interrupt=self._interrupt,
            wake=self.woken.set,
            observer=observer,
            dead_letters=DeadLetterer(client, queue_url, self.counts) if self.ordering.fifo else None,
            fifo=self.ordering.fifo,
            ledger=PassLedger(attempts, self.counts),
        )
        self.receives = ThreadPoolExecutor(options.max_receives_in_flight, thread_name_prefix="sqs-receive")
        self.lock = threading.Lock()
        self.receives_in_flight = 0
        self.stopped_because = ""
        self.interrupted: BaseException | None = None  # a handler's KeyboardInterrupt or SystemExit
        # FIFO: no poll before this (an empty short poll while groups are held; see _take).
        self.next_poll_at = 0.0

    def run(self, progress: Callable[[DrainSummary], None] | None, progress_every: float) -> DrainSummary:
        self.observer.pass_started()
        self.acks.start()
        self.handlers.start()
        next_progress = self.started + progress_every
        try:
            while not self._should_stop():
                self.woken.clear()
                if self._may_receive():
                    self._start_receive()
                    continue
                self.woken.wait(CHECK_EVERY_SECONDS)
                if progress and time.monotonic() >= next_progress:
                    progress(self._summary())
                    next_progress += progress_every
        except BaseException as error:
            # Ctrl-C on the pass's own thread, say: let go of what waits for a slot, then close.
            # Re-raised below, once the pass is closed and told (``self.interrupted``).
            self._interrupt(error)
            self._finish("interrupted")
        finally:
            closing = _Sampler(progress, self._summary, next_progress, progress_every)
            try:
                try:
                    self.receives.shutdown(wait=True)
                finally:
                    self.handlers.close()
            finally:
                try:
                    self.acks.close()
                finally:
                    closing.stop()
        summary = self._summary()
        self.observer.pass_finished(summary)
        if self.interrupted is not None:
            raise self.interrupted
        return summary

    def _summary(self) -> DrainSummary:
        summary = self.counts.snapshot()
        summary.stopped_because = self.stopped_because
        return summary

    def _stopping(self) -> bool:
        """Handlers start no new message once this is true."""
        return self.interrupted is not None or self.stop.is_set() or time.monotonic() > self.deadline

    def _interrupt(self, error: BaseException) -> None:
        with self.lock:
            self.interrupted = self.interrupted or error
        self.woken.set()

    def _should_stop(self) -> bool:
        if not self.stopped_because:
            if self.interrupted is not None:
                self._finish("interrupted")
            elif self.stop.is_set():
                self._finish("stop_requested")
            elif self.deadline - time.monotonic() < 1:
                self._finish("budget")
        return bool(self.stopped_because)

    def _finish(self, reason: str) -> None:
        """Stop receiving; the first reason is the one reported."""
        with self.lock:
            self.stopped_because = self.stopped_because or reason
        self.woken.set()
        if reason in RELEASE_WHEN_STOPPED_BECAUSE:
            # Units not started, and units waiting out of their slots, give their messages back.
            self.handlers.stop_starting()

    def _release(self, messages: list[SqsMessage]) -> None:
        """Messages not started: SQS may hand them out again at once."""
        for group in by_group(messages):
            self.acks.change_visibility(group, 0)
        self.counts.add(released=len(messages))

    def _may_receive(self) -> bool:
        now = time.monotonic()
        if now < self.polling.retry_at or now < self.next_poll_at:
            return False
        in_flight_allowed = self.sizing.receives_in_flight() if self.polling.flowing else 1
        with self.lock:
            if self.receives_in_flight >= in_flight_allowed:
                return False
        # Backpressure: messages that wait for their delete are held, and heartbeated, until
        # it is confirmed; more receiving would only make them wait longer.
        if self.acks.deletes_behind():
            return False
        # Units waiting out of their slots (FIFO backoffs, a dependency down) are held too: bounded.
        if not self.handlers.room_to_wait():
            return False
        return self.prefetch.reserve(self.batch, self.batch * in_flight_allowed)

    def _start_receive(self) -> None:
        now = time.monotonic()
        with self.lock:
            others_in_flight = self.receives_in_flight
            self.receives_in_flight += 1
            in_flight = self.receives_in_flight
        # A receive still in flight may bring a group whose next messages this one cannot see.
        nothing_in_hand = not others_in_flight and self.acks.is_idle()
        wait = self.polling.wait_seconds(now, self.deadline)
        if self.ordering.fifo and not nothing_in_hand:
            wait = max(wait, self._held_poll_seconds(now))
        self.counts.peaks(receives_in_flight=in_flight)
        self.receives.submit(self._receive, wait, nothing_in_hand)

    def _receive(self, wait: int, nothing_in_hand: bool) -> None:
        try:
            self._take(self.receiver.receive(self.batch, wait), wait, nothing_in_hand)
        finally:
            with self.lock:
                self.receives_in_flight -= 1
            self.woken.set()

    def _take(self, result: tuple[list[SqsMessage], float] | None, wait: int, nothing_in_hand: bool) -> None:
        if result is None:
            self.prefetch.give(self.batch)
            if self.polling.failed(time.monotonic(), self.deadline) >= RECEIVE_ERRORS_BEFORE_GIVING_UP:
                self._finish("sqs_errors")
            return
        messages, sent_at = result
        self.observer.received(messages)
        # Visibility runs from when SQS got the call: count from when it was sent. Held before the
        # polling hears of them: a receive sent once it does sees them in hand (see _start_receive).
        overtakers = self.acks.hold(messages, sent_at)
        self.polling.received(len(messages), self.batch, sent_at, time.monotonic())
        if overtakers:
            # They would overtake earlier messages of their group that are on their way back.
            self._release(overtakers)
        runnable: Unit = [m for m in messages if m not in overtakers]
        if runnable and self.stopped_because in RELEASE_WHEN_STOPPED_BECAUSE:
            self._release(runnable)
            runnable = []
        self.prefetch.give(self.batch - len(runnable))
        if runnable:
            self.handlers.submit(self.ordering.units(runnable))
        elif not messages:
            if nothing_in_hand or not self.ordering.fifo:
                if self.polling.lingered(sent_at, wait):
                    # Nothing visible for the whole linger. Failures given back to SQS come
                    # back after their backoff, on a later pass.
                    self._finish("queue_empty")
            elif wait < HELD_POLL_SECONDS:
                # Held groups hide their next messages: poll on, but not at once (short polls).
                self.next_poll_at = sent_at + HELD_POLL_SECONDS

    def _held_poll_seconds(self, now: float) -> int:
        """A poll's wait while FIFO groups are in hand: the linger, at least a second, within the
        longest wait and the budget."""
        wanted = max(HELD_POLL_SECONDS, math.ceil(self.options.linger_seconds))
        return max(0, min(wanted, self.options.wait_time_seconds, math.floor(self.deadline - now) - 1))


class _Sampler:
    """Progress samples while a pass closes (handlers still running, deletes in flight): they renew
    the pass's slot and push the watchdog back, so a slow last handler never looks like a dead pass."""

    def __init__(
        self,
        progress: Callable[[DrainSummary], None] | None,
        summary: Callable[[], DrainSummary],
        first_at: float,
        every: float,
    ) -> None:
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        if progress is not None:
            self._thread = threading.Thread(
                target=self._run, args=(progress, summary, first_at, every), name="sqs-closing-progress"
            )
            self._thread.start()

    def _run(
        self,
        progress: Callable[[DrainSummary], None],
        summary: Callable[[], DrainSummary],
        due: float,
        every: float,
    ) -> None:
        while not self._done.wait(max(0.0, due - time.monotonic())):
            try:
                progress(summary())
            except Exception as error:  # the pass's own loop would raise it; here the close must go on
                logger.warning(
                    "a progress sample failed while the pass closes: %s: %s", type(error).__name__, error
                )
            due = max(due + every, time.monotonic())

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
