"""What one pass is asked to do (``DrainOptions``) and what it did (``DrainSummary``)."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from .sizing import MAX_ACK_CALLS_IN_FLIGHT, MAX_RECEIVES_IN_FLIGHT

if TYPE_CHECKING:
    from ..settings import Settings

SQS_MAX_VISIBILITY_SECONDS = 43_200


@dataclass(frozen=True)
class DrainOptions:
    # The longest a single receive waits for messages (SQS allows 0-20 s).
    wait_time_seconds: int = 20
    max_concurrency: int = 32
    budget_seconds: float = 240.0
    visibility_timeout_seconds: int = 60
    # How long a pass goes on once the queue looks empty; its first poll waits this long.
    linger_seconds: float = 1.0
    # Extend a message's visibility once this fraction of its timeout has passed.
    heartbeat_fraction: float = 0.5
    backoff_base_seconds: int = 5
    backoff_max_seconds: int = 300
    # How long a finished message may wait for others to fill a delete batch.
    ack_linger_seconds: float = 0.05
    # Bounds of the sizing (see sizing.py): receives and ack calls in flight at once.
    max_receives_in_flight: int = MAX_RECEIVES_IN_FLIGHT
    max_ack_calls_in_flight: int = MAX_ACK_CALLS_IN_FLIGHT

    @classmethod
    def from_settings(cls, settings: Settings) -> DrainOptions:
        return cls(
            wait_time_seconds=settings.wait_time_seconds,
            max_concurrency=settings.max_concurrency,
            budget_seconds=settings.drain_budget_seconds,
            visibility_timeout_seconds=settings.visibility_timeout_seconds,
            linger_seconds=settings.linger_seconds,
            backoff_base_seconds=settings.retry_backoff_base_seconds,
            backoff_max_seconds=settings.retry_backoff_max_seconds,
        )

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
    # FIFO: moved to the DLQ by the consumer after maxReceiveCount attempts (see dead_lettering.py).
    dead_lettered: int = 0
    heartbeats: int = 0
    receive_requests: int = 0
    empty_receives: int = 0
    ack_requests: int = 0
    dead_letter_requests: int = 0
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
        return self.receive_requests + self.ack_requests + self.dead_letter_requests

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

    def add(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self.summary, name, getattr(self.summary, name) + value)

    def peak(self, name: str, value: int) -> None:
        with self._lock:
            setattr(self.summary, name, max(getattr(self.summary, name), value))

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
