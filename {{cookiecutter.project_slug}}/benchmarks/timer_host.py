"""A stand-in for the Functions host, for one timer: it fires the app's real timer function on its
schedule the way the host does, and prints what happened as JSON lines. ``latency_benchmark.py`` runs
one per configuration, each in a process of its own (the app reads its settings from the environment).

    python benchmarks/timer_host.py --period 10 --first-tick <epoch s> --until <epoch s>

Run from an app's folder (``function_app`` is imported from there, as the host indexes it):

- ticks fall on multiples of ``--period``; passes never overlap: a tick that falls due during a pass
  runs as soon as it ends, past due, and the ones it overran collapse into it;
- each invocation gets a ``TimerRequest`` with the host's ScheduleStatus (Last, Next, LastUpdated), Next
  being the next occurrence;
- the handler records when each message reached it: the app's ``handle_message`` is replaced where the
  drain loads it from, by one that does nothing else;
- each invocation's length (what Flex and Consumption bill) and its SQS requests (the drain's summary);
- one warm-up invocation before the first tick: a running host has loaded what a first one loads.

It imports nothing else of the app, so it runs another version of it too (``--app-dir``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any


class DrainSummaries(logging.Handler):
    """The ``sqs_drain`` fields of each "drain finished" log line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.fields: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "sqs_drain", None)
        if isinstance(fields, dict):
            self.fields.append(fields)


def emit(kind: str, **fields: object) -> None:
    print(json.dumps({kind: fields}), flush=True)


def timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--period", type=float, required=True, help="seconds between ticks")
    parser.add_argument("--first-tick", type=float, required=True, help="epoch seconds of the first tick")
    parser.add_argument("--until", type=float, required=True, help="epoch seconds after which no tick fires")
    args = parser.parse_args(argv)
    sys.path.insert(0, ".")
    from azure.functions.timer import TimerRequest

    import function_app

    functions = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
    timer = functions["drain_input_queue_on_timer"]
    package = timer.__module__.split(".")[0]
    handlers = importlib.import_module(f"{package}.handler")
    lock = threading.Lock()

    def record(message: Any) -> None:
        handled = time.time()
        with lock:
            emit(
                "message",
                body=message.body,
                sent=int(message.attributes["SentTimestamp"]) / 1000,
                handled=handled,
            )

    setattr(handlers, "handle_message", record)  # noqa: B010 (a module found by name)
    summaries = DrainSummaries()
    logging.getLogger().addHandler(summaries)
    logging.getLogger().setLevel(logging.INFO)

    def fire(scheduled: float, last: float) -> float:
        """One invocation, as the host makes it; returns when it ended."""
        started = time.time()
        status = {
            "Last": timestamp(last),
            "Next": timestamp(scheduled + period),
            "LastUpdated": timestamp(started),
        }
        before = len(summaries.fields)
        error = ""
        try:
            timer(TimerRequest(past_due=started - scheduled > 1.0, schedule_status=status))
        except Exception as failure:  # a failed invocation is billed all the same; the host logs it
            error = f"{type(failure).__name__}: {failure}"
        ended = time.time()
        requests = sum(int(fields.get("sqs_requests", 0)) for fields in summaries.fields[before:])
        emit("pass", started=started, seconds=ended - started, sqs_requests=requests, error=error)
        return ended

    period = args.period
    # A running host is warm: one tick before the first loads what a first invocation loads.
    fire(args.first_tick - period, args.first_tick - 2 * period)
    scheduled, last = args.first_tick, args.first_tick - period
    while scheduled < args.until:
        delay = scheduled - time.time()
        if delay > 0:
            time.sleep(delay)
        ended = fire(scheduled, last)
        last = scheduled
        # The next occurrence; those that fell due during the pass collapse into one that runs at once.
        scheduled = max(scheduled + period, math.floor(ended / period) * period)
    return 0


if __name__ == "__main__":
    sys.exit(main())
