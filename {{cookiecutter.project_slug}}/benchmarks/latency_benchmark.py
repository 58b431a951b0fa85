"""Delivery latency and billed GB-s of each plan's drain defaults, with passes fired as the host fires them.

Not a test: it prints figures. From the project root:

    python -m benchmarks.latency_benchmark                                # one-minute schedule, 10 minutes
    python -m benchmarks.latency_benchmark --period 5 --duration 60      # compressed: a minute

Two timers run side by side, each on a fresh queue, each calling the app's own drain
(``engine.runtime.drain_input_queue``) the way the Functions host calls the timer function:

- ticks fall on multiples of ``--period`` (the schedule, ``0 */1 * * * *`` by default);
- passes never overlap: a tick that falls due during a pass runs as soon as it ends, and the
  ones it overran collapse into that one;
- each pass is told the next occurrence, as the host's ScheduleStatus.Next tells the function.

One timer has SQS_POLL_UNTIL_NEXT_TICK false (Flex Consumption's and Consumption's default: a pass
stops after the 1 s linger), the other true (Premium's: it polls until the next tick). Messages are
sent at uniformly random times; delivery latency runs from SentTimestamp to the handler's start.
``--rtt-ms`` puts a round trip (``benchmarks/latency_proxy.py``) between the drains and SQS.

How a compressed schedule scales: with the cheap default a message waits for the next tick, so its
latency grows with the period (p50 about half of it, p99 nearly all of it) and the idle passes a
month shrink with it; with continuous polling latency is one round trip whatever the period, and
every second is billed.

Billing, per pass: Flex Consumption bills the instance memory while it runs, at least 1 s, rounded up
to 100 ms (``--flex-memory-mb``, 2,048 by default); Consumption bills the memory used (rounded up to
128 MB; ``--consumption-memory-mb`` assumes 256) at least 100 ms; Premium bills its always-ready
instance by the hour, so its passes add nothing. "a month" extrapolates the run's billed share of
its wall time to 30 days.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .drain_benchmark import endpoint_for
from .latency_proxy import latency_proxy_process

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage

FLEX_PRICE_PER_GB_SECOND = 0.000026
CONSUMPTION_PRICE_PER_GB_SECOND = 0.000016
SECONDS_PER_MONTH = 30 * 86_400


@dataclass
class Timer:
    """One timer function's passes and what its handler saw."""

    continuous: bool
    queue_name: str = ""
    passes: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, message: SqsMessage) -> None:
        started = time.time()
        sent = int(message.attributes["SentTimestamp"]) / 1000
        with self.lock:
            self.latencies.append(max(0.0, started - sent))

    def run(self, period: float, first_tick: float, until: threading.Event, stop: threading.Event) -> None:
        """Fire passes as the host does until ``until`` is set, then one last pass stopped by ``stop``."""
        from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue
        from {{ cookiecutter.package_name }}.engine.settings import Settings

        settings = Settings(
            input_queue=self.queue_name,
            output_queue=self.queue_name,
            dlq="",
            auth_mode="default_chain",
            poll_until_next_tick=self.continuous,
        )
        scheduled = first_tick
        while not until.is_set():
            delay = scheduled - time.time()
            if delay > 0 and until.wait(delay):
                break
            started = time.monotonic()
            next_tick = datetime.fromtimestamp(scheduled + period, tz=UTC)
            drain_input_queue(settings, handler=self.handle, stop=stop, next_tick=next_tick)
            self.passes.append(time.monotonic() - started)
            # The next occurrence; when it fell due during the pass, the latest one runs at once.
            now = time.time()
            scheduled = max(scheduled + period, math.floor(now / period) * period)


def percentile(values: list[float], share: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else float("nan")


def flex_billed_seconds(seconds: float) -> float:
    return max(1.0, math.ceil(round(seconds * 10, 6)) / 10)


def consumption_billed_seconds(seconds: float) -> float:
    return max(0.1, math.ceil(round(seconds * 1000, 6)) / 1000)


def trickle(client: SQSClient, urls: list[str], times: list[float], started: float) -> None:
    """Each message at its time, to every queue at once (the same arrival for both timers)."""
    for number, at in enumerate(times):
        delay = started + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for url in urls:
            client.send_message(QueueUrl=url, MessageBody=f"m-{number}")


def rows(args: argparse.Namespace, cheap: Timer, continuous: Timer, wall_seconds: float) -> list[str]:
    flex_gb = args.flex_memory_mb / 1024
    consumption_gb = math.ceil(args.consumption_memory_mb / 128) * 128 / 1024
    month = SECONDS_PER_MONTH / wall_seconds

    def line(plan: str, timer: Timer, billed: str) -> str:
        latencies = timer.latencies
        return (
            f"| {plan} | {str(timer.continuous).lower()} | every {args.period:g} s | {len(latencies)}"
            f" | {len(timer.passes)} | {percentile(latencies, 0.5):.2f} | {percentile(latencies, 0.99):.2f}"
            f" | {max(latencies, default=float('nan')):.2f} | {billed} |"
        )

    def gb_seconds(timer: Timer, gb: float, billed_seconds: Callable[[float], float], price: float) -> str:
        run = gb * sum(billed_seconds(d) for d in timer.passes)
        return f"{run:,.0f} | {run * month:,.0f} (${run * month * price:,.2f})"

    return [
        "| plan | SQS_POLL_UNTIL_NEXT_TICK | schedule | messages | passes | latency p50 (s) | p99 (s)"
        " | max (s) | billed GB-s in the run | GB-s a month (USD) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        line(
            f"Flex Consumption, {args.flex_memory_mb:,} MB (default)",
            cheap,
            gb_seconds(cheap, flex_gb, flex_billed_seconds, FLEX_PRICE_PER_GB_SECOND),
        ),
        line(
            f"Consumption, {args.consumption_memory_mb:,} MB used (default)",
            cheap,
            gb_seconds(cheap, consumption_gb, consumption_billed_seconds, CONSUMPTION_PRICE_PER_GB_SECOND),
        ),
        line("Premium EP1 (default)", continuous, "0 | 0 (the instance is billed by the hour)"),
        line(
            f"Flex Consumption, {args.flex_memory_mb:,} MB, polling continuously",
            continuous,
            gb_seconds(continuous, flex_gb, flex_billed_seconds, FLEX_PRICE_PER_GB_SECOND),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.latency_benchmark", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--endpoint-url", help="an SQS endpoint (default: start the embedded emulator)")
    parser.add_argument("--period", type=float, default=60.0, help="seconds between ticks (default 60)")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds messages arrive over")
    parser.add_argument("--messages", type=int, default=100, help="messages, at uniformly random times")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="round trip between the drains and SQS")
    parser.add_argument("--flex-memory-mb", type=int, default=2_048, choices=[512, 2_048, 4_096])
    parser.add_argument("--consumption-memory-mb", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ["AWS_REGION"] = args.region
    arrival = random.Random(args.seed)  # noqa: S311 (arrival times, not secrets)
    arrivals = sorted(arrival.uniform(0, args.duration) for _ in range(args.messages))
    timers = [Timer(continuous=False), Timer(continuous=True)]

    from {{ cookiecutter.package_name }}.engine.aws_session import reset_clients

    with endpoint_for(args.endpoint_url) as endpoint:
        import boto3

        direct = boto3.client("sqs", endpoint_url=endpoint, region_name=args.region)
        urls = []
        for timer in timers:
            timer.queue_name = f"latency-{uuid.uuid4().hex[:12]}"
            urls.append(direct.create_queue(QueueName=timer.queue_name)["QueueUrl"])
        proxy = latency_proxy_process(endpoint, args.rtt_ms / 2) if args.rtt_ms else nullcontext(endpoint)
        with proxy as drain_endpoint:
            os.environ["AWS_ENDPOINT_URL"] = drain_endpoint
            reset_clients()
            until, stop = threading.Event(), threading.Event()
            # As on a running host, the timers have ticked before the first message comes.
            first_tick = math.ceil(time.time() / args.period + 0.1) * args.period
            threads = [
                threading.Thread(target=t.run, args=(args.period, first_tick, until, stop), daemon=True)
                for t in timers
            ]
            for thread in threads:
                thread.start()
            time.sleep(max(0.0, first_tick - time.time()))
            started = time.monotonic()
            print(f"{args.messages} messages over {args.duration:g} s ...", file=sys.stderr)
            trickle(direct, urls, arrivals, started)
            # The last messages wait for at most one more tick.
            deadline = time.monotonic() + 2 * args.period + 5
            while time.monotonic() < deadline and any(len(t.latencies) < args.messages for t in timers):
                time.sleep(0.2)
            until.set()
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            wall_seconds = time.monotonic() - started
        for url in urls:
            direct.delete_queue(QueueUrl=url)
    print("\n".join(rows(args, timers[0], timers[1], wall_seconds)))
    print()
    lost = [args.messages - len(t.latencies) for t in timers]
    where = "the embedded emulator (moto), started by this script" if not args.endpoint_url else endpoint
    print(
        f"{args.messages} messages over {args.duration:g} s, ticks every {args.period:g} s,"
        f" RTT {args.rtt_ms:g} ms, {wall_seconds:.0f} s in all;"
        f" not handled: {lost[0]} (cheap), {lost[1]} (continuous); endpoint: {where};"
        f" Python {platform.python_version()} on {platform.system()} {platform.machine()},"
        f" {os.cpu_count()} CPUs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
