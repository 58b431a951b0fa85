"""The SQS consumer: one drain pass of a queue, within a time budget, losing nothing.

How one pass works (``drain``):

- The calling thread long-polls ``ReceiveMessage`` (up to 10 at a time) whenever
  enough handler slots are free, and hands messages to a thread pool of
  ``max_concurrency`` handlers. It stops receiving when the queue is empty, the
  budget is spent, ``stop`` is set, or SQS keeps failing; then it waits for the
  running handlers.
- One acknowledger thread does every other SQS call, in batches of 10: it deletes
  successes (``DeleteMessageBatch``, retrying its ``Failed`` entries), gives failures
  their backoff (``ChangeMessageVisibilityBatch``), releases messages that were never
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
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef

    from .settings import Settings

logger = logging.getLogger(__name__)

SQS_BATCH_LIMIT = 10
RECEIVE_ERRORS_BEFORE_GIVING_UP = 3
DELETE_ATTEMPTS = 3


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
            attributes={str(key): value for key, value in raw.get("Attributes", {}).items()},
            message_attributes=dict(raw.get("MessageAttributes", {})),
        )

    @property
    def receive_count(self) -> int:
        return int(self.attributes.get("ApproximateReceiveCount", "1"))

    @property
    def group_id(self) -> str | None:
        return self.attributes.get("MessageGroupId")

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

    def backoff_seconds(self, receive_count: int) -> int:
        """Exponential in the receive count, capped; SQS allows at most 12 h."""
        exponent = min(max(receive_count - 1, 0), 30)
        return int(min(self.backoff_base_seconds * 2**exponent, self.backoff_max_seconds, 43_200))


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

    def as_log_fields(self) -> dict[str, Any]:
        return {**asdict(self), "sqs_requests": self.sqs_requests}


def drain(
    client: SQSClient,
    queue_url: str,
    handler: Handler,
    options: DrainOptions,
    *,
    stop: threading.Event | None = None,
) -> DrainSummary:
    """Drain ``queue_url`` once; returns what happened. Never raises for a handler's error."""
    return _Drain(client, queue_url, handler, options, stop or threading.Event()).run()


@dataclass
class _Held:
    """A received message this drain is responsible for until it is acked or released."""

    message: SqsMessage
    visible_until: float


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
        self.fifo = queue_url.endswith(".fifo")
        self.summary = DrainSummary()
        self.counts_lock = threading.Lock()
        self.acks = _Acknowledger(client, queue_url, options, self.summary, self.counts_lock)

    def run(self) -> DrainSummary:
        started = time.monotonic()
        deadline = started + self.options.budget_seconds
        in_flight: set[Future[None]] = set()
        refill_at = min(SQS_BATCH_LIMIT, self.options.max_concurrency)
        self.acks.start()
        try:
            with ThreadPoolExecutor(
                max_workers=self.options.max_concurrency, thread_name_prefix="sqs-handler"
            ) as pool:
                self.summary.stopped_because = self._receive_loop(pool, in_flight, deadline, refill_at)
                wait(in_flight)
        finally:
            self.acks.close()
        self.summary.duration_seconds = round(time.monotonic() - started, 3)
        return self.summary

    def _receive_loop(
        self,
        pool: ThreadPoolExecutor,
        in_flight: set[Future[None]],
        deadline: float,
        refill_at: int,
    ) -> str:
        consecutive_errors = 0
        while True:
            if self.stop.is_set():
                return "stop_requested"
            remaining = deadline - time.monotonic()
            if remaining < 1:
                return "budget"
            free = self.options.max_concurrency - self.acks.held_count()
            if free < refill_at:
                if not in_flight:  # handlers are done; their acks are about to be accepted
                    time.sleep(0.005)
                done, _ = wait(in_flight, timeout=min(remaining, 1.0), return_when=FIRST_COMPLETED)
                in_flight.difference_update(done)
                continue
            nothing_in_hand = self.acks.is_idle()
            try:
                messages = self._receive(min(free, SQS_BATCH_LIMIT), math.floor(remaining))
            except Exception as error:  # botocore has already retried it
                consecutive_errors += 1
                self._count(sqs_errors=1)
                self.summary.last_error = f"{type(error).__name__}: {error}"
                logger.warning("ReceiveMessage failed (%d in a row): %s", consecutive_errors, error)
                if consecutive_errors >= RECEIVE_ERRORS_BEFORE_GIVING_UP:
                    return "sqs_errors"
                time.sleep(min(2.0**consecutive_errors, max(remaining - 1, 0)))
                continue
            consecutive_errors = 0
            if not messages:
                if nothing_in_hand:
                    return "queue_empty"
                # Messages we hold may hide others (a FIFO group in flight): settle, then look again.
                self.acks.wait_until_idle(timeout=max(deadline - time.monotonic(), 0))
                continue
            for sequence in self._sequences(messages):
                in_flight.add(pool.submit(self._handle_sequence, sequence))
            in_flight.difference_update({f for f in in_flight if f.done()})

    def _receive(self, max_messages: int, remaining_seconds: int) -> list[SqsMessage]:
        response = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=min(self.options.wait_time_seconds, max(remaining_seconds - 1, 0)),
            VisibilityTimeout=self.options.visibility_timeout_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        received_at = time.monotonic()
        messages = [SqsMessage.from_sqs(raw) for raw in response.get("Messages", [])]
        self._count(receive_requests=1, received=len(messages))
        self.acks.hold(messages, received_at + self.options.visibility_timeout_seconds)
        return messages

    def _sequences(self, messages: list[SqsMessage]) -> Iterable[list[SqsMessage]]:
        """Units of work: one message each, or on FIFO one group's messages in order."""
        if not self.fifo:
            return ([m] for m in messages)
        groups: dict[str | None, list[SqsMessage]] = {}
        for message in messages:
            groups.setdefault(message.group_id, []).append(message)
        return groups.values()

    def _handle_sequence(self, sequence: list[SqsMessage]) -> None:
        for position, message in enumerate(sequence):
            if self.stop.is_set():
                self.acks.release(sequence[position:])  # never started
                return
            if not self._handle(message):
                self.acks.release(sequence[position + 1 :])  # must not overtake the failed one
                return

    def _handle(self, message: SqsMessage) -> bool:
        try:
            self.handler(message)
        except Exception:
            self._count(failed=1)
            backoff = self.options.backoff_seconds(message.receive_count)
            logger.warning(
                "message %s failed on receive %d; visible again in %d s",
                message.message_id,
                message.receive_count,
                backoff,
                exc_info=True,
            )
            self.acks.retry_later(message, backoff)
            return False
        self._count(succeeded=1)
        self.acks.delete(message)
        return True

    def _count(self, **increments: int) -> None:
        with self.counts_lock:
            for name, value in increments.items():
                setattr(self.summary, name, getattr(self.summary, name) + value)


_Command = tuple[str, SqsMessage, int]


class _Acknowledger(threading.Thread):
    """Batches every SQS write of a drain on one thread: deletes, backoffs, releases, heartbeats."""

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        options: DrainOptions,
        summary: DrainSummary,
        counts_lock: threading.Lock,
    ) -> None:
        super().__init__(name="sqs-acknowledger", daemon=True)
        self.client = client
        self.queue_url = queue_url
        self.options = options
        self.summary = summary
        self.counts_lock = counts_lock
        self.commands: queue.Queue[_Command | None] = queue.Queue()
        self.held: dict[str, _Held] = {}
        self.held_lock = threading.Condition()
        self.sending = False
        self.deletes: list[tuple[SqsMessage, int]] = []
        self.visibility: list[tuple[SqsMessage, int]] = []
        timeout = options.visibility_timeout_seconds
        self.heartbeat_margin = timeout * (1 - options.heartbeat_fraction)
        self.heartbeat_every = max(0.2, min(5.0, timeout * options.heartbeat_fraction / 2))

    # Called from the drain's threads.
    def hold(self, messages: list[SqsMessage], visible_until: float) -> None:
        with self.held_lock:
            for message in messages:
                self.held[message.receipt_handle] = _Held(message, visible_until)

    def held_count(self) -> int:
        with self.held_lock:
            return len(self.held)

    def is_idle(self) -> bool:
        """Nothing held, and every ack sent: the queue's state is what SQS shows."""
        with self.held_lock:
            return self._idle()

    def wait_until_idle(self, timeout: float) -> None:
        with self.held_lock:
            self.held_lock.wait_for(self._idle, timeout=timeout)

    def _idle(self) -> bool:
        return (
            not self.held
            and not self.deletes
            and not self.visibility
            and not self.sending
            and self.commands.empty()
        )

    def delete(self, message: SqsMessage) -> None:
        self.commands.put(("delete", message, 0))

    def retry_later(self, message: SqsMessage, seconds: int) -> None:
        self.commands.put(("visibility", message, seconds))

    def release(self, messages: list[SqsMessage]) -> None:
        for message in messages:
            self.commands.put(("visibility", message, 0))
        with self.counts_lock:
            self.summary.released += len(messages)

    def close(self) -> None:
        self.commands.put(None)
        self.join()

    # The acknowledger's own thread.
    def run(self) -> None:
        next_heartbeat = time.monotonic() + self.heartbeat_every
        first_pending_at: float | None = None
        while True:
            wakeup = next_heartbeat
            if first_pending_at is not None:
                wakeup = min(wakeup, first_pending_at + self.options.ack_linger_seconds)
            try:
                command = self.commands.get(timeout=max(0.0, wakeup - time.monotonic()))
            except queue.Empty:
                pass
            else:
                if command is None:  # the drain is over: nothing more will come
                    self._flush(full_only=False)
                    return
                self._accept(command)
                first_pending_at = first_pending_at or time.monotonic()
            now = time.monotonic()
            self._flush(full_only=True)
            if first_pending_at is not None and now - first_pending_at >= self.options.ack_linger_seconds:
                self._flush(full_only=False)
                first_pending_at = None
            if now >= next_heartbeat:
                self._heartbeat(now)
                next_heartbeat = now + self.heartbeat_every

    def _accept(self, command: _Command) -> None:
        kind, message, seconds = command
        with self.held_lock:  # from held to pending in one step, so is_idle() never sees neither
            self.held.pop(message.receipt_handle, None)
            if kind == "delete":
                self.deletes.append((message, 1))
            else:
                self.visibility.append((message, seconds))

    def _flush(self, *, full_only: bool) -> None:
        with self.held_lock:
            self.sending = True
        try:
            self._send_batches(full_only=full_only)
        finally:
            with self.held_lock:
                self.sending = False
                self.held_lock.notify_all()

    def _send_batches(self, *, full_only: bool) -> None:
        while self.deletes and (len(self.deletes) >= SQS_BATCH_LIMIT or not full_only):
            batch, self.deletes = self.deletes[:SQS_BATCH_LIMIT], self.deletes[SQS_BATCH_LIMIT:]
            self._delete_batch(batch)
        while self.visibility and (len(self.visibility) >= SQS_BATCH_LIMIT or not full_only):
            batch, self.visibility = self.visibility[:SQS_BATCH_LIMIT], self.visibility[SQS_BATCH_LIMIT:]
            self._change_visibility(batch)

    def _delete_batch(self, batch: list[tuple[SqsMessage, int]]) -> None:
        entries = {str(i): item for i, item in enumerate(batch)}
        failed = self._call_batch(
            "delete_message_batch",
            [{"Id": i, "ReceiptHandle": m.receipt_handle} for i, (m, _) in entries.items()],
            entries,
        )
        with self.counts_lock:
            self.summary.deleted += len(batch) - len(failed)
        for entry_id, reason in failed.items():
            message, attempt = entries[entry_id]
            if attempt < DELETE_ATTEMPTS:
                self.deletes.append((message, attempt + 1))
                continue
            # The message will be redelivered and handled again: at-least-once, never lost.
            logger.error("could not delete message %s: %s", message.message_id, reason)
            with self.counts_lock:
                self.summary.delete_failed += 1

    def _change_visibility(self, batch: list[tuple[SqsMessage, int]]) -> None:
        entries = {str(i): item for i, item in enumerate(batch)}
        failed = self._call_batch(
            "change_message_visibility_batch",
            [
                {"Id": i, "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                for i, (m, seconds) in entries.items()
            ],
            entries,
        )
        for entry_id, reason in failed.items():
            # Harmless for the message: it becomes visible when its current timeout ends.
            logger.warning("could not change visibility of %s: %s", entries[entry_id][0].message_id, reason)

    def _heartbeat(self, now: float) -> None:
        timeout = self.options.visibility_timeout_seconds
        with self.held_lock:
            due = [h for h in self.held.values() if h.visible_until - now <= self.heartbeat_margin]
        for start in range(0, len(due), SQS_BATCH_LIMIT):
            batch = due[start : start + SQS_BATCH_LIMIT]
            entries = {str(i): (h.message, timeout) for i, h in enumerate(batch)}
            failed = self._call_batch(
                "change_message_visibility_batch",
                [
                    {"Id": i, "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                    for i, (m, seconds) in entries.items()
                ],
                entries,
            )
            with self.held_lock:
                for i, held in enumerate(batch):
                    if str(i) not in failed:
                        held.visible_until = now + timeout
            with self.counts_lock:
                self.summary.heartbeats += len(batch) - len(failed)

    def _call_batch(
        self, operation: str, request: list[Any], entries: Mapping[str, object]
    ) -> dict[str, str]:
        """Run one batch call; returns the failed entry IDs with their reasons."""
        with self.counts_lock:
            self.summary.ack_requests += 1
        try:
            response = getattr(self.client, operation)(QueueUrl=self.queue_url, Entries=request)
        except Exception as error:  # botocore has already retried it
            with self.counts_lock:
                self.summary.sqs_errors += 1
                self.summary.last_error = f"{type(error).__name__}: {error}"
            logger.warning("%s failed: %s", operation, error)
            return {entry_id: str(error) for entry_id in entries}
        return {
            failure["Id"]: f"{failure.get('Code', '')}: {failure.get('Message', '')}"
            for failure in response.get("Failed", [])
        }
