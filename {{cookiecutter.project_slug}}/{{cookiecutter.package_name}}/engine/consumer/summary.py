"""What one pass did: ``DrainSummary``, and ``Counts``, which keeps it up to date from several threads."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass
class DrainSummary:
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    deleted: int = 0
    delete_failed: int = 0
    released: int = 0
    # FIFO: moved to the DLQ by the consumer after maxReceiveCount attempts (see dead_lettering.py).
    dead_lettered: int = 0
    heartbeats: int = 0
    receive_requests: int = 0
    empty_receives: int = 0
    ack_requests: int = 0
    # GetQueueAttributes for the queue-depth gauges (only when metrics are exported).
    depth_requests: int = 0
    dead_letter_requests: int = 0
    # FIFO: calls to the attempt ledger (attempts.py), in the app's storage account.
    attempt_ledger_calls: int = 0
    sqs_errors: int = 0
    duration_seconds: float = 0.0
    # From the start of the pass to the last delete SQS confirmed: the time the drain rate is over.
    draining_seconds: float = 0.0
    # The sizing as it went: peaks of receives and ack calls in flight, of messages in hand
    # (received and not yet deleted or given back), and the last receive round trip seen.
    peak_receives_in_flight: int = 0
    peak_ack_calls_in_flight: int = 0
    peak_in_hand: int = 0
    receive_round_trip_ms: float = 0.0
    stopped_because: str = ""
    last_error: str = ""

    @property
    def sqs_requests(self) -> int:
        return self.receive_requests + self.ack_requests + self.depth_requests + self.dead_letter_requests

    @property
    def drain_rate(self) -> float:
        """Messages deleted per second while this pass drained (0.0 when it deleted none)."""
        return round(self.deleted / self.draining_seconds, 1) if self.draining_seconds > 0 else 0.0

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
        return {**asdict(self), "sqs_requests": self.sqs_requests, "drain_rate": self.drain_rate}


class Counts:
    """The summary, updated from several threads."""

    def __init__(self) -> None:
        self.summary = DrainSummary()
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def add(
        self,
        *,
        received: int = 0,
        succeeded: int = 0,
        failed: int = 0,
        delete_failed: int = 0,
        released: int = 0,
        heartbeats: int = 0,
        receive_requests: int = 0,
        empty_receives: int = 0,
        ack_requests: int = 0,
        dead_lettered: int = 0,
        dead_letter_requests: int = 0,
        attempt_ledger_calls: int = 0,
    ) -> None:
        with self._lock:
            summary = self.summary
            summary.received += received
            summary.succeeded += succeeded
            summary.failed += failed
            summary.delete_failed += delete_failed
            summary.released += released
            summary.heartbeats += heartbeats
            summary.receive_requests += receive_requests
            summary.empty_receives += empty_receives
            summary.ack_requests += ack_requests
            summary.dead_lettered += dead_lettered
            summary.dead_letter_requests += dead_letter_requests
            summary.attempt_ledger_calls += attempt_ledger_calls

    def peaks(self, *, receives_in_flight: int = 0, ack_calls_in_flight: int = 0, in_hand: int = 0) -> None:
        with self._lock:
            summary = self.summary
            summary.peak_receives_in_flight = max(summary.peak_receives_in_flight, receives_in_flight)
            summary.peak_ack_calls_in_flight = max(summary.peak_ack_calls_in_flight, ack_calls_in_flight)
            summary.peak_in_hand = max(summary.peak_in_hand, in_hand)

    def deleted(self, count: int) -> None:
        with self._lock:
            self.summary.deleted += count
            self.summary.draining_seconds = round(time.monotonic() - self.started, 3)

    def round_trip(self, seconds: float) -> None:
        with self._lock:
            self.summary.receive_round_trip_ms = round(seconds * 1000, 1)

    def snapshot(self) -> DrainSummary:
        with self._lock:
            summary = replace(self.summary)
        summary.duration_seconds = round(time.monotonic() - self.started, 3)
        return summary

    def error(self, error: Exception) -> None:
        with self._lock:
            self.summary.sqs_errors += 1
            self.summary.last_error = f"{type(error).__name__}: {error}"

    def refused(self, operation: str, reason: str) -> None:
        """An entry SQS refused for good (the call itself succeeded)."""
        with self._lock:
            self.summary.last_error = f"{operation}: {reason}"
