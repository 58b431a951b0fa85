"""What one pass is asked to do: the drain's options, from the settings table."""

from __future__ import annotations

from dataclasses import dataclass

from .. import settings as table

# SQS refuses a visibility change that reaches past 12 h from the message's receive.
SQS_MAX_VISIBILITY_SECONDS = 43_200
# A change reaches SQS a little after it is decided (batching, botocore's retries).
VISIBILITY_MARGIN_SECONDS = 300
# Bounds of the sizing (see sizing.py); they also size botocore's connection pool.
MAX_RECEIVES_IN_FLIGHT = 32
MAX_ACK_CALLS_IN_FLIGHT = 32


@dataclass(frozen=True)
class DrainOptions:
    # The settings' defaults are the table's (engine/settings.py), never written here.
    # The longest a single receive waits for messages (SQS allows 0-20 s).
    wait_time_seconds: int = table.SQS_WAIT_TIME_SECONDS.default
    max_concurrency: int = table.SQS_MAX_CONCURRENCY.default
    budget_seconds: float = table.SQS_DRAIN_BUDGET_SECONDS.default
    visibility_timeout_seconds: int = table.SQS_VISIBILITY_TIMEOUT_SECONDS.default
    # How long a pass goes on once the queue looks empty; its first poll waits this long.
    linger_seconds: float = table.SQS_LINGER_SECONDS.default
    backoff_base_seconds: int = table.SQS_RETRY_BACKOFF_BASE_SECONDS.default
    backoff_max_seconds: int = table.SQS_RETRY_BACKOFF_MAX_SECONDS.default
    # Not settings: the drain's own tuning.
    # Extend a message's visibility once this fraction of its timeout has passed.
    heartbeat_fraction: float = 0.5
    # How long a finished message may wait for others to fill a delete batch.
    ack_linger_seconds: float = 0.05
    max_receives_in_flight: int = MAX_RECEIVES_IN_FLIGHT
    max_ack_calls_in_flight: int = MAX_ACK_CALLS_IN_FLIGHT
    # How long after its receive a message may stay hidden: no visibility change (backoff,
    # heartbeat, release) reaches past it, and a message that would goes back to SQS first.
    hold_limit_seconds: float = SQS_MAX_VISIBILITY_SECONDS - VISIBILITY_MARGIN_SECONDS

    @classmethod
    def from_settings(cls, settings: table.Settings) -> DrainOptions:
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
        """Exponential in the receive count, capped; SQS allows at most 12 h (from the receive:
        acknowledging.py cuts it to what is left of the message's hold)."""
        exponent = min(max(receive_count - 1, 0), 30)
        seconds = self.backoff_base_seconds * 2**exponent
        return int(min(seconds, self.backoff_max_seconds, SQS_MAX_VISIBILITY_SECONDS))
