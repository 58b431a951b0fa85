"""Acknowledging: every SQS write of a pass (deletes, backoffs, releases) and the heartbeat.

A message stays in ``held`` from the moment it is received until SQS confirms its delete,
or until its visibility change (backoff or release) is sent. The heartbeat extends every
held message near the end of its visibility timeout, so a message that waits for a
handler, or for its delete, never becomes visible to another consumer.

Calls go out on a pool, batched by 10: as many at once as the sizing allows (see
sizing.py). A visibility change waits for a heartbeat of the same message that is still
in flight, so a heartbeat never lands after, and undoes, a backoff or a release.

SQS refuses a visibility change that reaches past 12 hours from the message's receive.
Each message's hold ends ``DrainOptions.hold_limit_seconds`` after the receive was sent
(12 h less a margin): every backoff, release and heartbeat is cut to end by then, a heartbeat
with nothing left to give is not sent (the message turns visible when its hold ends), and
handling.py gives a message back before its hold could end while the pass still needs it.

``delete`` returns a future that says whether SQS confirmed the delete. On a standard
queue nobody waits for it: an entry SQS fails through no fault of the caller is retried
at once, up to ``DELETE_ATTEMPTS``, then reported (the message comes back: at least once).
On FIFO the rest of the message's group waits for it (handling.py), so any refusal, the
caller's fault or not, and a failed call are retried while the group waits, held and
heartbeated, with a growing pause, up to ``GROUP_DELETE_ATTEMPTS`` (about 18 s): a delete
that fails once costs a retry, never the group's order.

The pass's observer hears of each delete SQS confirmed (``PassObserver.deleted``), once, from
``_tell_deleted``: the one place that calls it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..queues import SQS_BATCH_LIMIT
from .fifo import Ordering
from .message import SqsMessage
from .observer import PassObserver
from .options import DrainOptions
from .sizing import HEARTBEAT_CALLS_IN_FLIGHT, Sizing
from .summary import Counts

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

DELETE_ATTEMPTS = 3
# FIFO: a group waits for its delete. Pauses between attempts: 0.25 s, doubling, at most 5 s.
GROUP_DELETE_ATTEMPTS = 8
GROUP_DELETE_FIRST_PAUSE_SECONDS = 0.25
GROUP_DELETE_LONGEST_PAUSE_SECONDS = 5.0
# Entry failures that only mean the message is already gone (deleted while its heartbeat flew).
GONE = ("ReceiptHandleIsInvalid", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight")


@dataclass
class _Held:
    """A received message this pass answers for until SQS confirms its delete, or it is given back."""

    message: SqsMessage
    visible_until: float
    # The end of its hold: no visibility change reaches past it (SQS's 12 hours).
    hold_until: float = math.inf
    deleting: bool = False
    # Its delete call is out: SQS may already have freed its FIFO group.
    delete_sent: bool = False


@dataclass(eq=False)
class _Delete:
    """A delete to send: its attempt, when it may go (after a pause), and what waits for it."""

    message: SqsMessage
    # A FIFO group waits for it: it goes at once when no ack call is in flight, else with the
    # answer of one or after the linger, whichever comes first (Nagle: batches form under load).
    awaited: bool = False
    attempt: int = 1
    not_before: float = 0.0
    confirmed: Future[bool] = field(default_factory=Future)


class Acknowledger(threading.Thread):
    def __init__(
        self,
        *,
        client: SQSClient,
        queue_url: str,
        options: DrainOptions,
        counts: Counts,
        sizing: Sizing,
        ordering: Ordering,
        wake: Callable[[], None],
        observer: PassObserver | None = None,
    ) -> None:
        super().__init__(name="sqs-acknowledger", daemon=True)
        self.observer = observer or PassObserver()
        self.client = client
        self.queue_url = queue_url
        self.options = options
        self.counts = counts
        self.sizing = sizing
        self.ordering = ordering
        self.wake = wake  # tells the pass that room was made; never called under self.lock
        self.lock = threading.Condition()
        self.held: dict[str, _Held] = {}
        self.deletes: list[_Delete] = []  # waiting for a delete call
        self.visibility: list[tuple[tuple[SqsMessage, ...], int]] = []  # units never split across calls
        self.returning: dict[str, SqsMessage] = {}  # visibility change pending or under way
        self.hold_until: dict[str, float] = {}  # of each message held or returning, by receipt handle
        self.past_hold: set[str] = set()  # heartbeats stopped: the hold ended (told once)
        self.heartbeating: set[str] = set()
        self.calls_in_flight = 0
        self.heartbeats_in_flight = 0
        self.closing = False
        self.ack_calls = ThreadPoolExecutor(options.max_ack_calls_in_flight, thread_name_prefix="sqs-ack")
        self.heartbeat_calls = ThreadPoolExecutor(
            HEARTBEAT_CALLS_IN_FLIGHT, thread_name_prefix="sqs-heartbeat"
        )
        timeout = options.visibility_timeout_seconds
        self.heartbeat_margin = timeout * (1 - options.heartbeat_fraction)
        self.heartbeat_every = max(0.2, min(5.0, timeout * options.heartbeat_fraction / 2))

    # Called from the pass's other threads.

    def hold(self, messages: list[SqsMessage], received_at: float) -> list[SqsMessage]:
        """Take charge of messages received by a call sent at ``received_at`` (visibility runs from
        when SQS got it); returns those that must not be handled yet (FIFO)."""
        visible_until = received_at + self.options.visibility_timeout_seconds
        hold_until = received_at + self.options.hold_limit_seconds
        with self.lock:
            # A message whose delete is out no longer holds its group back: a later message of
            # it may rightly come now (taking it for an overtaker would send it back for nothing).
            held = [h.message for h in self.held.values() if not h.delete_sent]
            in_hand = held + list(self.returning.values())
            overtakers = self.ordering.overtakers(messages, in_hand)
            for message in messages:
                self.held[message.receipt_handle] = _Held(message, visible_until, hold_until)
                self.hold_until[message.receipt_handle] = hold_until
            self.counts.peaks(in_hand=len(self.held))
        return overtakers

    def hold_left(self, message: SqsMessage) -> float:
        """Seconds until ``message``'s hold ends (SQS's 12 hours from its receive)."""
        with self.lock:
            return self.hold_until.get(message.receipt_handle, math.inf) - time.monotonic()

    def delete(self, message: SqsMessage, *, awaited: bool = False) -> Future[bool]:
        """Delete ``message``; the future says whether SQS confirmed it (False: it comes back).
        ``awaited``: something waits for that answer, so the delete goes out at once."""
        delete = _Delete(message, awaited)
        with self.lock:
            held = self.held.get(message.receipt_handle)
            if held:
                held.deleting = True
            self.deletes.append(delete)
            self.lock.notify_all()
        self.sizing.finished.add(1)
        return delete.confirmed

    def change_visibility(self, messages: list[SqsMessage], seconds: int) -> None:
        """Backoff (seconds > 0) or release (0), in one batch call for up to 10 messages."""
        if not messages:
            return
        with self.lock:
            for message in messages:
                self.held.pop(message.receipt_handle, None)
                self.returning[message.receipt_handle] = message
            for start in range(0, len(messages), SQS_BATCH_LIMIT):
                self.visibility.append((tuple(messages[start : start + SQS_BATCH_LIMIT]), seconds))
            self.lock.notify_all()
        self.sizing.finished.add(len(messages))

    def deletes_behind(self) -> bool:
        """More deletes wait for a call than one round of calls can carry: receiving must wait."""
        with self.lock:
            waiting = len(self.deletes)
        return waiting > self.sizing.ack_calls_in_flight() * SQS_BATCH_LIMIT

    def is_idle(self) -> bool:
        """Nothing held and every ack done: what SQS shows is the queue's real state."""
        with self.lock:
            return self._idle()

    def close(self) -> None:
        """Send every pending ack, then stop; returns when SQS has answered them all."""
        with self.lock:
            self.closing = True
            self.lock.notify_all()
        self.join()

    def _idle(self) -> bool:
        return not self.held and self._acks_done()

    def _acks_done(self) -> bool:
        return not self.deletes and not self.visibility and not self.calls_in_flight and not self.returning

    # The acknowledger's own thread: decides what to send and when.

    def run(self) -> None:
        linger = self.options.ack_linger_seconds
        next_heartbeat = time.monotonic() + self.heartbeat_every
        first_pending_at: float | None = None
        with self.lock:
            while True:
                now = time.monotonic()
                ready = self._ready_deletes(now)
                if not ready and not self.visibility:
                    first_pending_at = None
                elif first_pending_at is None:
                    first_pending_at = now
                lingered = (
                    self.closing
                    or (first_pending_at is not None and now - first_pending_at >= linger)
                    or (not self.calls_in_flight and any(d.awaited for d in ready))
                )
                sent_partial = self._send(now, everything=lingered)
                if sent_partial:
                    first_pending_at = None
                if now >= next_heartbeat:
                    self._heartbeat(now)
                    next_heartbeat = now + self.heartbeat_every
                if self.closing and self._finished():
                    break
                wakeup = min([next_heartbeat, *(d.not_before for d in self.deletes if d.not_before > now)])
                if first_pending_at is not None and not lingered:
                    wakeup = min(wakeup, first_pending_at + linger)
                self.lock.wait(max(0.001, wakeup - now))
        self.ack_calls.shutdown(wait=True)
        self.heartbeat_calls.shutdown(wait=True)

    def _finished(self) -> bool:
        if not self._acks_done() or self.heartbeats_in_flight:
            return False
        leftovers = [held.message for held in self.held.values() if not held.deleting]
        if not leftovers:
            return not self.held
        # A handler died without answering (BaseException): let SQS redeliver its message now.
        self.change_visibility(leftovers, 0)
        self.counts.add(released=len(leftovers))
        return False

    def _ready_deletes(self, now: float) -> list[_Delete]:
        """Deletes that may go now: all of them once closing, else those not pausing."""
        return [d for d in self.deletes if self.closing or d.not_before <= now]

    def _send(self, now: float, *, everything: bool) -> bool:
        """Start ack calls while the sizing allows: whole batches, or also partial ones when ``everything``.

        Returns True when a partial batch went out (its linger is over)."""
        partial = False
        limit = self.sizing.ack_calls_in_flight()
        while self.calls_in_flight < limit:
            entries = self._take_visibility(everything)
            if entries:
                self._start(self._change_visibility_batch, entries)
                partial = partial or len(entries) < SQS_BATCH_LIMIT
                continue
            ready = self._ready_deletes(now)
            if ready and (len(ready) >= SQS_BATCH_LIMIT or everything):
                batch = ready[:SQS_BATCH_LIMIT]
                self.deletes = [d for d in self.deletes if d not in batch]
                for delete in batch:
                    if held := self.held.get(delete.message.receipt_handle):
                        held.delete_sent = True
                self._start(self._delete_batch, batch)
                partial = partial or len(batch) < SQS_BATCH_LIMIT
                continue
            break
        return partial

    def _start(self, call: Callable[[Any], None], batch: Any) -> None:
        self.calls_in_flight += 1
        self.counts.peaks(ack_calls_in_flight=self.calls_in_flight)
        self.ack_calls.submit(call, batch)

    def _take_visibility(self, everything: bool) -> list[tuple[SqsMessage, int]]:
        """The next visibility changes to send, whole units only, none of them mid-heartbeat."""
        ready = [u for u in self.visibility if not any(m.receipt_handle in self.heartbeating for m in u[0])]
        if not ready or (sum(len(u[0]) for u in ready) < SQS_BATCH_LIMIT and not everything):
            return []
        entries: list[tuple[SqsMessage, int]] = []
        now = time.monotonic()
        for unit in ready:
            messages, seconds = unit
            if len(entries) + len(messages) > SQS_BATCH_LIMIT:
                break
            entries += [(message, self._within_hold(message, seconds, now)) for message in messages]
            self.visibility.remove(unit)
        return entries

    def _within_hold(self, message: SqsMessage, seconds: int, now: float) -> int:
        """``seconds`` of visibility, cut to end by the end of ``message``'s hold."""
        left = math.floor(self.hold_until.get(message.receipt_handle, math.inf) - now)
        return max(0, min(seconds, left))

    def _heartbeat(self, now: float) -> None:
        timeout = self.options.visibility_timeout_seconds
        due: list[tuple[SqsMessage, int]] = []
        for held in self.held.values():
            message = held.message
            if (
                held.visible_until - now > self.heartbeat_margin
                or message.receipt_handle in self.heartbeating
            ):
                continue
            seconds = self._within_hold(message, timeout, now)
            if now + seconds >= held.visible_until + 1:  # it extends the visibility: worth a call
                due.append((message, seconds))
            elif message.receipt_handle not in self.past_hold:
                self.past_hold.add(message.receipt_handle)
                logger.warning(
                    "message %s reaches the end of its hold (SQS allows 12 h from its receive): "
                    "it turns visible again while still in hand",
                    message.message_id,
                )
        for start in range(0, len(due), SQS_BATCH_LIMIT):
            batch = due[start : start + SQS_BATCH_LIMIT]
            self.heartbeating.update(m.receipt_handle for m, _ in batch)
            self.heartbeats_in_flight += 1
            self.heartbeat_calls.submit(self._heartbeat_batch, batch)

    # Pool threads: one SQS call each, then the outcome under the lock.

    def _delete_batch(self, batch: list[_Delete]) -> None:
        started = time.monotonic()
        failed = self._call_batch(
            "delete_message_batch",
            [{"Id": str(i), "ReceiptHandle": d.message.receipt_handle} for i, d in enumerate(batch)],
        )
        now = time.monotonic()
        self.sizing.ack_round_trip.add(now - started)
        self.counts.deleted(len(batch) - len(failed))
        refused: list[tuple[_Delete, str]] = []
        with self.lock:
            for index, delete in enumerate(batch):
                if str(index) not in failed:
                    self._let_go(delete.message)
            for entry_id, (retryable, reason) in failed.items():
                delete = batch[int(entry_id)]
                if self._retry(delete, retryable, now):
                    logger.warning(
                        "delete of message %s failed (%s); retrying, attempt %d",
                        delete.message.message_id,
                        reason,
                        delete.attempt,
                    )
                    self.deletes.append(delete)
                else:
                    self._let_go(delete.message)
                    refused.append((delete, reason))
            self.calls_in_flight -= 1
            self.lock.notify_all()
        for index, delete in enumerate(batch):
            if str(index) not in failed:
                delete.confirmed.set_result(True)
        for delete, reason in refused:
            # SQS will redeliver it and it will be handled again: at least once, never lost.
            logger.error("could not delete message %s: %s", delete.message.message_id, reason)
            self.counts.add(delete_failed=1)
            self.counts.refused("DeleteMessageBatch", reason)
            delete.confirmed.set_result(False)
        self.wake()
        self._tell_deleted([d.message for index, d in enumerate(batch) if str(index) not in failed])

    def _tell_deleted(self, messages: list[SqsMessage]) -> None:
        """The observer hears of deletes SQS confirmed (after any retries): never under the lock, and
        last, so that neither a FIFO group nor the pass waits for it. Its fault never costs an ack."""
        if not messages:
            return
        try:
            self.observer.deleted(messages)
        except Exception:
            logger.exception("a pass observer failed on confirmed deletes")

    def _let_go(self, message: SqsMessage) -> None:
        """``message`` is no longer this pass's (under the lock)."""
        self.held.pop(message.receipt_handle, None)
        self.hold_until.pop(message.receipt_handle, None)
        self.past_hold.discard(message.receipt_handle)

    def _retry(self, delete: _Delete, retryable: bool, now: float) -> bool:
        """Whether to try a failed delete again; sets its next attempt (under the lock)."""
        if not self.ordering.fifo:
            if not retryable or delete.attempt >= DELETE_ATTEMPTS:
                return False
        elif delete.attempt >= GROUP_DELETE_ATTEMPTS:
            return False
        else:  # its group waits: pause, so that what failed has time to pass
            pause = GROUP_DELETE_FIRST_PAUSE_SECONDS * 2 ** (delete.attempt - 1)
            delete.not_before = now + min(pause, GROUP_DELETE_LONGEST_PAUSE_SECONDS)
        delete.attempt += 1
        return True

    def _change_visibility_batch(self, entries: list[tuple[SqsMessage, int]]) -> None:
        failed = self._change_visibility(entries)
        with self.lock:
            for message, _ in entries:
                self.returning.pop(message.receipt_handle, None)
                self._let_go(message)
            self.calls_in_flight -= 1
            self.lock.notify_all()
        for message, reason in failed.values():
            # Harmless for the message: it becomes visible when its current timeout ends.
            logger.warning("could not change the visibility of %s: %s", message.message_id, reason)
        self.wake()

    def _heartbeat_batch(self, batch: list[tuple[SqsMessage, int]]) -> None:
        sent_at = time.monotonic()
        failed = self._change_visibility(batch)
        with self.lock:
            for message, seconds in batch:
                self.heartbeating.discard(message.receipt_handle)
                held = self.held.get(message.receipt_handle)
                if held and message.receipt_handle not in failed:
                    held.visible_until = sent_at + seconds
            self.heartbeats_in_flight -= 1
            self.lock.notify_all()
        self.counts.add(heartbeats=len(batch) - len(failed))
        for message, reason in failed.values():
            if not reason.startswith(GONE):
                logger.warning("could not extend the visibility of %s: %s", message.message_id, reason)

    def _change_visibility(self, entries: list[tuple[SqsMessage, int]]) -> dict[str, tuple[SqsMessage, str]]:
        """Failed entries, by receipt handle, with the reason."""
        failed = self._call_batch(
            "change_message_visibility_batch",
            [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                for i, (m, seconds) in enumerate(entries)
            ],
        )
        return {
            entries[int(entry_id)][0].receipt_handle: (entries[int(entry_id)][0], reason)
            for entry_id, (_, reason) in failed.items()
        }

    def _call_batch(self, operation: str, entries: list[Any]) -> dict[str, tuple[bool, str]]:
        """Run one batch call; returns its failed entry IDs with (retryable, reason)."""
        self.counts.add(ack_requests=1)
        try:
            response = getattr(self.client, operation)(QueueUrl=self.queue_url, Entries=entries)
        except Exception as error:  # botocore has already retried the call itself
            self.counts.error(error)
            logger.warning("%s failed: %s", operation, error)
            return {entry["Id"]: (True, str(error)) for entry in entries}
        return {
            failure["Id"]: (
                not failure.get("SenderFault", False),
                f"{failure.get('Code', '')}: {failure.get('Message', '')}",
            )
            for failure in response.get("Failed", [])
        }
