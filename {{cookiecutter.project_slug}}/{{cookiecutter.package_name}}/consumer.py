"""The SQS consumer: one drain pass of a queue, within a time budget, losing nothing.

How one pass works (``drain``):

- Receiver threads long-poll ``ReceiveMessage`` (10 at a time) whenever 10 slots are
  free, and hand the messages to a pool of ``max_concurrency`` handler threads. There
  is one slot per handler plus one batch ahead, so the pool refills as handlers
  finish, without waiting for a receive. One receiver polls; more join (one per 16
  handlers, up to 4) once a receive comes back full. They stop receiving when the
  queue is empty, the budget is spent, ``stop`` is set, or SQS keeps failing; then
  the pass waits for the running handlers.
- One acknowledger thread batches every other SQS call by 10: it deletes successes
  (``DeleteMessageBatch``, retrying its ``Failed`` entries), gives failures their
  backoff (``ChangeMessageVisibilityBatch``), releases messages that were never
  started, and extends the visibility of messages still being handled (heartbeat).
- A failed message is never deleted: SQS redelivers it after its backoff, and the
  queue's redrive policy moves it to the DLQ after ``maxReceiveCount`` receives.
- FIFO queues: messages of one ``MessageGroupId`` run in order, one at a time. After a
  failure the rest of that group in the batch is released unprocessed, so order holds.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .queues import SQS_BATCH_LIMIT, is_fifo

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef

    from .settings import Settings

logger = logging.getLogger(__name__)

SQS_MAX_VISIBILITY_SECONDS = 43_200
# Receive errors in a row (each already retried by botocore) before a pass gives up.
RECEIVE_ERRORS_BEFORE_GIVING_UP = 3
DELETE_ATTEMPTS = 3
# Batch calls the acknowledger may have in flight at once.
ACK_CALLS_IN_PARALLEL = 2


@dataclass(frozen=True)
class SqsMessage:
    """One received message, as the handler sees it."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    message_attributes: Mapping[str, MessageAttributeValueOutputTypeDef] = field(default_factory=dict)

    @classmethod
    def from_sqs(cls, raw: MessageTypeDef) -> SqsMessage:
        return cls(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw.get("Body", ""),
            attributes={str(key): str(value) for key, value in raw.get("Attributes", {}).items()},
            message_attributes=dict(raw.get("MessageAttributes", {})),
        )

    @property
    def receive_count(self) -> int:
        return int(self.attributes.get("ApproximateReceiveCount", "1"))

    @property
    def group_id(self) -> str | None:
        return self.attributes.get("MessageGroupId")

    @property
    def sequence_number(self) -> int | None:
        """FIFO only: the order SQS gave the message within its queue."""
        number = self.attributes.get("SequenceNumber")
        return int(number) if number else None

    @property
    def sent_at(self) -> datetime | None:
        millis = self.attributes.get("SentTimestamp")
        return datetime.fromtimestamp(int(millis) / 1000, tz=timezone.utc) if millis else None

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body)


Handler = Callable[[SqsMessage], None]


@dataclass(frozen=True)
class DrainOptions:
    wait_time_seconds: int = 20
    max_concurrency: int = 32
    budget_seconds: float = 240.0
    visibility_timeout_seconds: int = 60
    # Extend a message's visibility once this fraction of its timeout has passed.
    heartbeat_fraction: float = 0.5
    backoff_base_seconds: int = 5
    backoff_max_seconds: int = 300
    # How long a finished message may wait for others to fill a delete batch.
    ack_linger_seconds: float = 0.05
    # Receives in flight at once; None: one per 16 handler slots, 1 to 4.
    receivers: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DrainOptions:
        return cls(
            wait_time_seconds=settings.wait_time_seconds,
            max_concurrency=settings.max_concurrency,
            budget_seconds=settings.drain_budget_seconds,
            visibility_timeout_seconds=settings.visibility_timeout_seconds,
            backoff_base_seconds=settings.retry_backoff_base_seconds,
            backoff_max_seconds=settings.retry_backoff_max_seconds,
        )

    @property
    def receiver_count(self) -> int:
        if self.receivers is not None:
            return max(1, self.receivers)
        return max(1, min(4, self.max_concurrency // 16))

    def backoff_seconds(self, receive_count: int) -> int:
        """Exponential in the receive count, capped; SQS allows at most 12 h."""
        exponent = min(max(receive_count - 1, 0), 30)
        seconds = self.backoff_base_seconds * 2**exponent
        return int(min(seconds, self.backoff_max_seconds, SQS_MAX_VISIBILITY_SECONDS))


@dataclass
class DrainSummary:
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    deleted: int = 0
    delete_failed: int = 0
    released: int = 0
    heartbeats: int = 0
    receive_requests: int = 0
    ack_requests: int = 0
    sqs_errors: int = 0
    duration_seconds: float = 0.0
    stopped_because: str = ""
    last_error: str = ""

    @property
    def sqs_requests(self) -> int:
        return self.receive_requests + self.ack_requests

    @property
    def problem(self) -> str | None:
        """Why this pass must be reported as failed, or None. A handler's failure is not one:
        its message is retried, then dead-lettered, by design."""
        if self.stopped_because == "sqs_errors":
            return f"SQS kept failing: {self.last_error}"
        if self.delete_failed:
            return (
                f"{self.delete_failed} handled message(s) could not be deleted and will be handled again "
                f"(check sqs:DeleteMessage on the queue): {self.last_error}"
            )
        return None

    def as_log_fields(self) -> dict[str, Any]:
        return {**asdict(self), "sqs_requests": self.sqs_requests}


def drain(
    client: SQSClient,
    queue_url: str,
    handler: Handler,
    options: DrainOptions,
    *,
    stop: threading.Event | None = None,
    progress: Callable[[DrainSummary], None] | None = None,
    progress_every_seconds: float = 5.0,
) -> DrainSummary:
    """Drain ``queue_url`` once; returns what happened. Never raises for a handler's error.

    Setting ``stop`` ends receiving (within one long-poll wait); running handlers finish,
    and messages received but not started are released at once. ``progress``, if given,
    gets the counts so far every ``progress_every_seconds`` while receiving goes on.
    """
    run = _Drain(client, queue_url, handler, options, stop or threading.Event())
    return run.run(progress, progress_every_seconds)


class _Counts:
    """The summary, updated from several threads."""

    def __init__(self) -> None:
        self.summary = DrainSummary()
        self._lock = threading.Lock()

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self.summary, name, getattr(self.summary, name) + value)

    def snapshot(self) -> DrainSummary:
        with self._lock:
            return replace(self.summary)

    def error(self, error: Exception) -> None:
        with self._lock:
            self.summary.sqs_errors += 1
            self.summary.last_error = f"{type(error).__name__}: {error}"

    def refused(self, operation: str, reason: str) -> None:
        """An entry SQS refused for good (the call itself succeeded)."""
        with self._lock:
            self.summary.last_error = f"{operation}: {reason}"


class _Slots:
    """Handler slots: a receiver takes them before receiving, a handler gives one back when done."""

    def __init__(self, total: int) -> None:
        self._free = total
        self._changed = threading.Condition()

    def take(self, count: int, timeout: float) -> int:
        """``count`` slots once that many are free; 0 if they are not within ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._free >= count, timeout=timeout):
                return 0
            self._free -= count
            return count

    def give(self, count: int = 1) -> None:
        if count:
            with self._changed:
                self._free += count
                self._changed.notify_all()

    def wake_all(self) -> None:
        with self._changed:
            self._changed.notify_all()


def by_group(messages: list[SqsMessage]) -> list[list[SqsMessage]]:
    """The messages of each MessageGroupId, in the order received."""
    groups: dict[str | None, list[SqsMessage]] = {}
    for message in messages:
        groups.setdefault(message.group_id, []).append(message)
    return list(groups.values())


class _Drain:
    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        handler: Handler,
        options: DrainOptions,
        stop: threading.Event,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.handler = handler
        self.options = options
        self.stop = stop
        self.fifo = is_fifo(queue_url)
        self.counts = _Counts()
        # One batch more than there are handlers: the next batch waits in the pool's queue
        # (its visibility kept by the heartbeat), so no handler idles through a receive.
        self.slots = _Slots(options.max_concurrency + min(SQS_BATCH_LIMIT, options.max_concurrency))
        self.acks = _Acknowledger(client, queue_url, options, self.counts)
        self.deadline = 0.0
        self.state_lock = threading.Lock()
        self.stopped_because = ""
        self.receive_errors_in_a_row = 0
        # Sequences submitted to the pool and not finished; those not started go back on stop.
        self.queued: dict[Future[None], list[SqsMessage]] = {}
        # Set once a receive comes back full: only then do the extra receivers start,
        # so an idle queue costs one long poll per pass.
        self.queue_is_busy = threading.Event()

    def run(self, progress: Callable[[DrainSummary], None] | None, progress_every: float) -> DrainSummary:
        started = time.monotonic()
        self.deadline = started + self.options.budget_seconds
        self.acks.start()
        try:
            with ThreadPoolExecutor(
                max_workers=self.options.max_concurrency, thread_name_prefix="sqs-handler"
            ) as pool:
                receivers = [
                    threading.Thread(target=self._receive_loop, args=(pool, n), name=f"sqs-receiver-{n}")
                    for n in range(self.options.receiver_count)
                ]
                for receiver in receivers:
                    receiver.start()
                for receiver in receivers:
                    while receiver.is_alive():
                        receiver.join(timeout=progress_every)
                        if progress and receiver.is_alive():
                            progress(self._summary(started))
            # Leaving the with block waited for every handler.
        finally:
            self.acks.close()
        return self._summary(started)

    def _summary(self, started: float) -> DrainSummary:
        summary = self.counts.snapshot()
        summary.stopped_because = self.stopped_because
        summary.duration_seconds = round(time.monotonic() - started, 3)
        return summary

    def _finish(self, reason: str) -> None:
        """Stop every receiver; the first reason is the one reported."""
        with self.state_lock:
            self.stopped_because = self.stopped_because or reason
            queued = list(self.queued.items())
        self.slots.wake_all()
        self.queue_is_busy.set()
        if reason in ("stop_requested", "budget"):
            for future, sequence in queued:
                if future.cancel():  # not started: SQS may hand them out again at once
                    self.acks.change_visibility(sequence, 0)
                    self.counts.add(released=len(sequence))
                    self.slots.give(len(sequence))

    def _should_stop(self) -> bool:
        if not self.stopped_because:
            if self.stop.is_set():
                self._finish("stop_requested")
            elif self.deadline - time.monotonic() < 1:
                self._finish("budget")
        return bool(self.stopped_because)

    def _receive_loop(self, pool: ThreadPoolExecutor, number: int) -> None:
        batch = min(SQS_BATCH_LIMIT, self.options.max_concurrency)
        if number:
            while not self.queue_is_busy.wait(timeout=0.5):
                if self._should_stop():
                    return
        while not self._should_stop():
            # Like newBatchThreshold: receive once a whole batch of slots is free.
            taken = self.slots.take(batch, timeout=0.5)
            if not taken:
                continue
            if self._should_stop():
                self.slots.give(taken)
                return
            nothing_in_hand = self.acks.is_idle()
            messages = self._receive(taken)
            self.slots.give(taken - len(messages or []))
            if messages is None:
                continue
            if messages:
                if len(messages) == taken:
                    self.queue_is_busy.set()
                self._dispatch(pool, messages)
            elif nothing_in_hand or not self.fifo:
                # An empty long poll: nothing is visible. Failures we hold come back
                # after their backoff, on a later pass.
                self._finish("queue_empty")
            else:
                # On FIFO, the groups we hold hide their next messages: settle, then look again.
                self.acks.wait_until_idle(timeout=max(self.deadline - time.monotonic(), 0))

    def _receive(self, max_messages: int) -> list[SqsMessage] | None:
        """Up to ``max_messages``; None when SQS failed (already retried by botocore)."""
        remaining = math.floor(self.deadline - time.monotonic())
        try:
            response = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max_messages,
                # Never wait past the budget.
                WaitTimeSeconds=max(0, min(self.options.wait_time_seconds, remaining - 1)),
                VisibilityTimeout=self.options.visibility_timeout_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception as error:
            self.counts.add(receive_requests=1)
            self.counts.error(error)
            with self.state_lock:
                self.receive_errors_in_a_row += 1
                in_a_row = self.receive_errors_in_a_row
            logger.warning("ReceiveMessage failed (%d in a row): %s", in_a_row, error)
            if in_a_row >= RECEIVE_ERRORS_BEFORE_GIVING_UP:
                self._finish("sqs_errors")
            else:
                self.stop.wait(min(2.0**in_a_row, max(self.deadline - time.monotonic() - 1, 0)))
            return None
        received_at = time.monotonic()
        with self.state_lock:
            self.receive_errors_in_a_row = 0
        messages = [SqsMessage.from_sqs(raw) for raw in response.get("Messages", [])]
        self.counts.add(receive_requests=1, received=len(messages))
        overtakers = self.acks.hold(messages, received_at + self.options.visibility_timeout_seconds)
        if not overtakers:
            return messages
        # They would overtake earlier messages of their group that are on their way back.
        for group in by_group(overtakers):
            self.acks.change_visibility(group, 0)
        self.counts.add(released=len(overtakers))
        return [m for m in messages if m not in overtakers]

    def _dispatch(self, pool: ThreadPoolExecutor, messages: list[SqsMessage]) -> None:
        """Units of work: one message each, or on FIFO one group's messages in order."""
        sequences = by_group(messages) if self.fifo else [[message] for message in messages]
        for sequence in sequences:
            future = pool.submit(self._handle_sequence, sequence)
            with self.state_lock:
                self.queued[future] = sequence
            future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self.state_lock:
            self.queued.pop(future, None)

    def _handle_sequence(self, sequence: list[SqsMessage]) -> None:
        for position, message in enumerate(sequence):
            if self.stop.is_set() or time.monotonic() > self.deadline:
                # Never started: SQS may hand them out again at once.
                self.acks.change_visibility(sequence[position:], 0)
                self.counts.add(released=len(sequence) - position)
                self.slots.give(len(sequence) - position)
                return
            try:
                backoff = self._handle(message)
            finally:
                self.slots.give()
            if backoff is not None:
                # The rest of a FIFO group must not overtake the failed message: it goes back
                # with it, in the same call, with the same backoff.
                self.acks.change_visibility(sequence[position:], backoff)
                self.counts.add(released=len(sequence) - position - 1)
                self.slots.give(len(sequence) - position - 1)
                return

    def _handle(self, message: SqsMessage) -> int | None:
        """Runs the handler; returns None on success, else the failed message's backoff."""
        try:
            self.handler(message)
        except Exception:
            self.counts.add(failed=1)
            backoff = self.options.backoff_seconds(message.receive_count)
            logger.warning(
                "message %s failed on receive %d; visible again in %d s",
                message.message_id,
                message.receive_count,
                backoff,
                exc_info=True,
            )
            return backoff
        self.counts.add(succeeded=1)
        self.acks.delete(message)
        return None


@dataclass
class _Held:
    """A received message this drain answers for until it is acked or released."""

    message: SqsMessage
    visible_until: float


# ("delete", (message,), attempt) or ("visibility", messages, seconds)
_Command = tuple[str, tuple[SqsMessage, ...], int]


class _Acknowledger(threading.Thread):
    """Batches every SQS write of a drain: deletes, backoffs, releases, heartbeats.

    Deletes go out on a small pool, ACK_CALLS_IN_PARALLEL at a time. Visibility changes
    (backoffs, releases, heartbeats) go out from this thread, one after another, so a
    heartbeat can never land after, and undo, a message's backoff or release.
    """

    def __init__(self, client: SQSClient, queue_url: str, options: DrainOptions, counts: _Counts) -> None:
        super().__init__(name="sqs-acknowledger", daemon=True)
        self.client = client
        self.queue_url = queue_url
        self.options = options
        self.counts = counts
        self.fifo = is_fifo(queue_url)
        self.commands: queue.Queue[_Command | None] = queue.Queue()
        self.held: dict[str, _Held] = {}
        self.lock = threading.Condition()
        self.deletes: list[tuple[SqsMessage, int]] = []
        # Units of (messages, seconds); a unit is never split across calls.
        self.visibility: list[tuple[tuple[SqsMessage, ...], int]] = []
        # Messages whose visibility change is pending or under way, by receipt handle.
        self.returning: dict[str, SqsMessage] = {}
        self.calls_in_flight = 0
        self.sending_visibility = False
        self.delete_calls = ThreadPoolExecutor(ACK_CALLS_IN_PARALLEL, thread_name_prefix="sqs-delete")
        timeout = options.visibility_timeout_seconds
        self.heartbeat_margin = timeout * (1 - options.heartbeat_fraction)
        self.heartbeat_every = max(0.2, min(5.0, timeout * options.heartbeat_fraction / 2))

    # Called from the drain's threads.
    def hold(self, messages: list[SqsMessage], visible_until: float) -> list[SqsMessage]:
        """Take charge of received messages; returns those that must not be handled yet.

        On FIFO, SQS gives out no message of a group while an earlier one is in flight.
        An emulator may: LocalStack makes a group visible again at the first message of
        a release call, before the call has released the rest. A message received after
        an earlier message of its group that this drain still holds, or is sending back,
        must go back too.
        """
        with self.lock:
            overtakers = self._overtakers(messages) if self.fifo else []
            for message in messages:
                self.held[message.receipt_handle] = _Held(message, visible_until)
        return overtakers

    def _overtakers(self, messages: list[SqsMessage]) -> list[SqsMessage]:
        earliest: dict[str | None, int] = {}
        for message in [h.message for h in self.held.values()] + list(self.returning.values()):
            number = message.sequence_number
            if number is not None and number < earliest.get(message.group_id, number + 1):
                earliest[message.group_id] = number
        return [
            m
            for m in messages
            if m.sequence_number is not None
            and m.sequence_number > earliest.get(m.group_id, m.sequence_number)
        ]

    def is_idle(self) -> bool:
        """Nothing held and every ack done: what SQS shows is the queue's real state."""
        with self.lock:
            return self._idle()

    def wait_until_idle(self, timeout: float) -> None:
        with self.lock:
            self.lock.wait_for(self._idle, timeout=timeout)

    def _idle(self) -> bool:
        return not self.held and self._acks_done()

    def _acks_done(self) -> bool:
        return (
            not self.deletes
            and not self.visibility
            and not self.calls_in_flight
            and not self.sending_visibility
            and self.commands.empty()
        )

    def delete(self, message: SqsMessage) -> None:
        self.commands.put(("delete", (message,), 1))

    def change_visibility(self, messages: list[SqsMessage], seconds: int) -> None:
        """Backoff (seconds > 0) or release (0), in one batch call for up to 10 messages."""
        for start in range(0, len(messages), SQS_BATCH_LIMIT):
            self.commands.put(("visibility", tuple(messages[start : start + SQS_BATCH_LIMIT]), seconds))

    def close(self) -> None:
        """Send every pending ack, then stop; returns when SQS has answered them all."""
        self.commands.put(None)
        self.join()

    # The acknowledger's own thread.
    def run(self) -> None:
        linger = self.options.ack_linger_seconds
        next_heartbeat = time.monotonic() + self.heartbeat_every
        first_pending_at: float | None = None
        closing = False
        while True:
            wakeup = next_heartbeat if first_pending_at is None else first_pending_at + linger
            timeout = 0.01 if closing else max(0.0, min(wakeup, next_heartbeat) - time.monotonic())
            closing = self._take_commands(timeout) or closing
            now = time.monotonic()
            if first_pending_at is None and (self.deletes or self.visibility):
                first_pending_at = now
            lingered = first_pending_at is not None and now - first_pending_at >= linger
            self._flush(full_only=not (closing or lingered))
            if not self.deletes and not self.visibility:
                first_pending_at = None
            if now >= next_heartbeat:
                self._heartbeat(now)
                next_heartbeat = now + self.heartbeat_every
            if closing and self._finished():
                break
        self.delete_calls.shutdown(wait=True)

    def _take_commands(self, timeout: float) -> bool:
        """Accept every command waiting (blocking up to ``timeout`` for the first); True once closed."""
        closed = False
        try:
            command = self.commands.get(timeout=timeout)
            while True:
                if command is None:
                    closed = True
                else:
                    self._accept(command)
                command = self.commands.get_nowait()
        except queue.Empty:
            return closed

    def _finished(self) -> bool:
        with self.lock:
            if not self._acks_done():
                return False
            leftovers = [held.message for held in self.held.values()]
        if not leftovers:
            return True
        # A handler died without answering (BaseException): let SQS redeliver its message now.
        self.change_visibility(leftovers, 0)
        self.counts.add(released=len(leftovers))
        return False

    def _accept(self, command: _Command) -> None:
        kind, messages, number = command
        with self.lock:  # from held to pending in one step, so is_idle() never sees neither
            for message in messages:
                self.held.pop(message.receipt_handle, None)
            if kind == "delete":
                self.deletes.extend((message, number) for message in messages)
            else:
                self.visibility.append((messages, number))
                self.returning.update((message.receipt_handle, message) for message in messages)

    def _flush(self, *, full_only: bool) -> None:
        """Send the pending acks: whole batches only, or everything."""
        while self.deletes and (len(self.deletes) >= SQS_BATCH_LIMIT or not full_only):
            with self.lock:
                batch, self.deletes = self.deletes[:SQS_BATCH_LIMIT], self.deletes[SQS_BATCH_LIMIT:]
                self.calls_in_flight += 1
            self.delete_calls.submit(self._delete_batch, batch)
        while self.visibility and (self._visibility_entries() >= SQS_BATCH_LIMIT or not full_only):
            with self.lock:
                entries: list[tuple[SqsMessage, int]] = []
                while self.visibility and len(entries) + len(self.visibility[0][0]) <= SQS_BATCH_LIMIT:
                    messages, seconds = self.visibility.pop(0)
                    entries += [(message, seconds) for message in messages]
                self.sending_visibility = True
            try:
                failed = self._change_visibility(entries)
            finally:
                with self.lock:
                    for message, _ in entries:
                        self.returning.pop(message.receipt_handle, None)
                    self.sending_visibility = False
                    self.lock.notify_all()
            for message, reason in failed:
                # Harmless for the message: it becomes visible when its current timeout ends.
                logger.warning("could not change the visibility of %s: %s", message.message_id, reason)

    def _visibility_entries(self) -> int:
        return sum(len(messages) for messages, _ in self.visibility)

    def _delete_batch(self, batch: list[tuple[SqsMessage, int]]) -> None:
        try:
            failed = self._call_batch(
                "delete_message_batch",
                [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, (m, _) in enumerate(batch)],
            )
            self.counts.add(deleted=len(batch) - len(failed))
            for entry_id, (retryable, reason) in failed.items():
                message, attempt = batch[int(entry_id)]
                if retryable and attempt < DELETE_ATTEMPTS:
                    self.commands.put(("delete", (message,), attempt + 1))
                    continue
                # SQS will redeliver it and it will be handled again: at least once, never lost.
                logger.error("could not delete message %s: %s", message.message_id, reason)
                self.counts.add(delete_failed=1)
                self.counts.refused("DeleteMessageBatch", reason)
        finally:
            with self.lock:  # after any retry is queued, so is_idle() never sees a gap
                self.calls_in_flight -= 1
                self.lock.notify_all()

    def _change_visibility(self, batch: list[tuple[SqsMessage, int]]) -> list[tuple[SqsMessage, str]]:
        failed = self._call_batch(
            "change_message_visibility_batch",
            [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                for i, (m, seconds) in enumerate(batch)
            ],
        )
        return [(batch[int(entry_id)][0], reason) for entry_id, (_, reason) in failed.items()]

    def _heartbeat(self, now: float) -> None:
        timeout = self.options.visibility_timeout_seconds
        with self.lock:
            due = [h for h in self.held.values() if h.visible_until - now <= self.heartbeat_margin]
        for start in range(0, len(due), SQS_BATCH_LIMIT):
            batch = due[start : start + SQS_BATCH_LIMIT]
            failed = {
                m.receipt_handle for m, _ in self._change_visibility([(h.message, timeout) for h in batch])
            }
            with self.lock:
                for held in batch:
                    if held.message.receipt_handle not in failed:
                        held.visible_until = now + timeout
            self.counts.add(heartbeats=len(batch) - len(failed))

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
