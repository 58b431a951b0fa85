"""How much of the pipeline a pass keeps in flight, sized from what it measures.

Little's law: the messages in transit equal the rate times the time each spends there.

- Receives in flight: each brings at most 10 messages per round trip, so
  ``rate x receive round trip / 10`` receives deliver ``rate``. The rate aimed at is what
  the handlers can take (``max_concurrency / handler time``), but at most ``GAIN`` times
  the rate delivered so far: like TCP BBR's start-up, receives double each round trip
  until the handlers, or the endpoint, are the bound.
- Ack calls in flight: ``rate of finished messages x ack round trip / 10``.
- The round trip is the recent average, but at most twice the smallest seen in the pass:
  beyond that the endpoint is queueing calls, and more in flight would only slow it more.
- Each receive in flight holds 10 prefetch credits until its messages start, so
  prefetched messages are bounded (10 per receive in flight), apart from the handler slots.

Both get ``HEADROOM``, and stay within bounds (``DrainOptions.max_receives_in_flight``,
``max_ack_calls_in_flight``) that also size botocore's connection pool.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import replace

from .options import MAX_ACK_CALLS_IN_FLIGHT, MAX_RECEIVES_IN_FLIGHT, DrainOptions

# Heartbeat calls run beside the ack calls and are not held back by their bound.
HEARTBEAT_CALLS_IN_FLIGHT = 4
HEADROOM = 1.5
GAIN = 2.0
BATCH = 10


def sqs_connections_needed(max_concurrency: int) -> int:
    """Connections one drain may use at once: its calls at their bounds, plus handlers that call SQS."""
    return max_concurrency + MAX_RECEIVES_IN_FLIGHT + MAX_ACK_CALLS_IN_FLIGHT + HEARTBEAT_CALLS_IN_FLIGHT


def fit_to_pool(options: DrainOptions, pool_size: int) -> DrainOptions:
    """Bounds that fit a client's connection pool (botocore opens, then drops, any extra)."""
    room = pool_size - HEARTBEAT_CALLS_IN_FLIGHT
    if options.max_receives_in_flight + options.max_ack_calls_in_flight <= room:
        return options
    receives = max(1, min(options.max_receives_in_flight, room // 2))
    return replace(
        options,
        max_receives_in_flight=receives,
        max_ack_calls_in_flight=max(1, min(options.max_ack_calls_in_flight, room - receives)),
    )


class Average:
    """An exponentially weighted average of durations; None until the first one."""

    def __init__(self, weight: float = 0.3) -> None:
        self.value: float | None = None
        self._weight = weight
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self.value = seconds if self.value is None else self.value + self._weight * (seconds - self.value)


class RoundTrip:
    """The recent average round trip, capped at twice the smallest seen; None until the first."""

    def __init__(self) -> None:
        self._average = Average()
        self._smallest: float | None = None

    def add(self, seconds: float) -> None:
        self._average.add(seconds)
        self._smallest = seconds if self._smallest is None else min(self._smallest, seconds)

    @property
    def value(self) -> float | None:
        average, smallest = self._average.value, self._smallest
        if average is None or smallest is None:
            return None
        return min(average, 2 * smallest)


class Rate:
    """Events per second over the last ``window`` seconds."""

    def __init__(self, window: float = 1.0) -> None:
        self._window = window
        self._started = time.monotonic()
        self._events: deque[tuple[float, int]] = deque()
        self._total = 0
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        with self._lock:
            self._events.append((time.monotonic(), count))
            self._total += count

    def per_second(self) -> float:
        now = time.monotonic()
        with self._lock:
            while self._events and self._events[0][0] < now - self._window:
                self._total -= self._events.popleft()[1]
            return self._total / max(min(self._window, now - self._started), 0.05)


class Sizing:
    def __init__(self, options: DrainOptions) -> None:
        self.slots = options.max_concurrency
        self.max_receives = max(1, options.max_receives_in_flight)
        self.max_ack_calls = max(1, options.max_ack_calls_in_flight)
        self.receive_round_trip = RoundTrip()
        self.ack_round_trip = RoundTrip()
        self.handler_seconds = Average()
        self.delivered = Rate()
        self.finished = Rate()

    def receives_in_flight(self) -> int:
        rtt, handling = self.receive_round_trip.value, self.handler_seconds.value
        if rtt is None:
            return 1
        rate = GAIN * self.delivered.per_second()
        if handling is not None:
            rate = min(rate, self.slots / max(handling, 1e-4))
        return _within(math.ceil(HEADROOM * rate * rtt / BATCH), 1, self.max_receives)

    def ack_calls_in_flight(self) -> int:
        rtt = self.ack_round_trip.value or self.receive_round_trip.value
        if rtt is None:
            return min(2, self.max_ack_calls)
        needed = math.ceil(HEADROOM * self.finished.per_second() * rtt / BATCH) + 1
        return _within(needed, min(2, self.max_ack_calls), self.max_ack_calls)


def _within(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
