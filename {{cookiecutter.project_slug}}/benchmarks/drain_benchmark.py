"""Drain throughput, duplicates and SQS requests per message across a WAN, and the idle tick's cost.

Not a test: it prints figures. From the project root:

    python -m benchmarks.drain_benchmark                                      # starts moto itself
    python -m benchmarks.drain_benchmark --endpoint-url http://127.0.0.1:4566  # e.g. LocalStack
    python -m benchmarks.drain_benchmark --handler app                        # your handler

For each round trip (``--rtt-ms``, default 0, 20, 80 and 160 ms: one metro up to two
continents), a latency proxy (``benchmarks/latency_proxy.py``) stands between the
consumers and the endpoint, and each of these runs on a fresh queue:

- the app's drain with a handler that sleeps ``--handler-ms``, or with your own ``handle_message`` on
  the local sample messages (``--handler app``), at each ``--concurrency``;
- the drain on an empty queue: the idle tick.

(The template repository's ``benchmarks/simple_loops.py`` sets simple loops beside it.)

The proxy runs in a process of its own, so the consumer's threads cannot slow its clock.

It prints messages handled and deleted per second, duplicates (handled more than once,
with no failure injected), and requests per message: all of them, and when busy (leaving
out the empty receives that end a pass: one per receive in flight when the queue ran dry).
Then it measures the idle tick at each ``--lingers`` value and computes, from those
durations, delivery latency and idle GB-s a month on Flex Consumption for a few schedules.

Rates run from the first request to the last handler end or the last confirmed delete.
Queues are filled directly, not through the proxy. moto scans the whole queue on every
receive, so on moto a rate measures moto: count requests with it, measure rates on
LocalStack or AWS.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from {{ cookiecutter.package_name }}.engine import delivery_plan

from .latency_proxy import latency_proxy_process

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from {{ cookiecutter.package_name }}.engine.consumer import DrainOptions, SqsMessage
    from {{ cookiecutter.package_name }}.engine.settings import Settings


MOTO_MESSAGES = 300
# Flex Consumption on demand: billed per GB-s while executions run, at least 1 s each, in 100 ms steps
# (engine/delivery_plan.py: the prices and billing rules, one place).
FLEX_MEMORY_MB = (512, 2_048)
FLEX_PRICE_PER_GB_SECOND = delivery_plan.FLEX_ON_DEMAND_GB_SECOND.usd
SECONDS_PER_MONTH = delivery_plan.SECONDS_PER_MONTH
SCHEDULES_SECONDS = (10, 60, 300)


@dataclass(frozen=True)
class Figures:
    rtt_ms: float
    name: str
    messages: int
    handled_per_second: float
    deleted_per_second: float
    duplicates: int
    lost: int
    requests: int
    empty_receives: int

    @property
    def requests_per_message(self) -> float:
        return self.requests / self.messages if self.messages else 0.0

    @property
    def busy_requests_per_message(self) -> float:
        """Leaving out the empty receives that tell a consumer the queue is drained."""
        return (self.requests - self.empty_receives) / self.messages if self.messages else 0.0


@dataclass(frozen=True)
class IdleTick:
    rtt_ms: float
    linger_seconds: float
    seconds: float
    receives: int


class Meter:
    """Counts a client's HTTP requests to SQS and notes when the last delete came back."""

    def __init__(self, client: SQSClient) -> None:
        self.requests = 0
        self.receives = 0
        self.empty_receives = 0
        self.last_delete = 0.0
        self.lock = threading.Lock()
        client.meta.events.register("before-send.sqs", self._request)
        client.meta.events.register("after-call.sqs.ReceiveMessage", self._received)
        client.meta.events.register("after-call.sqs.DeleteMessage", self._deleted)
        client.meta.events.register("after-call.sqs.DeleteMessageBatch", self._deleted)

    def _request(self, **kwargs: Any) -> None:
        with self.lock:
            self.requests += 1
            self.receives += kwargs.get("event_name", "").endswith("ReceiveMessage")

    def _received(self, parsed: dict[str, Any], **_: Any) -> None:
        with self.lock:
            self.empty_receives += not parsed.get("Messages")

    def _deleted(self, **_: Any) -> None:
        with self.lock:
            self.last_delete = time.monotonic()

    def reset(self) -> float:
        with self.lock:
            self.requests, self.receives, self.empty_receives, self.last_delete = 0, 0, 0, 0.0
        return time.monotonic()


class Handled:
    """What a handler saw: each body's count, and when the last one finished."""

    def __init__(self) -> None:
        self.bodies: Counter[str] = Counter()
        self.last_end = 0.0
        self.lock = threading.Lock()

    def add(self, body: str) -> None:
        with self.lock:
            self.bodies[body] += 1
            self.last_end = time.monotonic()

    def figures(self, rtt_ms: float, name: str, messages: int, *, started: float, meter: Meter) -> Figures:
        last_delete = meter.last_delete
        handled = sum(self.bodies.values())
        return Figures(
            rtt_ms,
            name,
            messages,
            handled / (self.last_end - started) if self.last_end > started else 0.0,
            (messages - self.lost(messages)) / (last_delete - started) if last_delete > started else 0.0,
            handled - len(self.bodies),
            self.lost(messages),
            meter.requests,
            meter.empty_receives,
        )

    def lost(self, messages: int) -> int:
        return messages - len(self.bodies)


def fill(client: SQSClient, url: str, count: int, body: Callable[[int], str] = "m-{}".format) -> None:
    from {{ cookiecutter.package_name }}.engine.producer import OutgoingMessage, Sender

    sender = Sender(client, url)
    chunks = [range(start, min(start + 100, count)) for start in range(0, count, 100)]
    with ThreadPoolExecutor(4) as pool:
        results = pool.map(lambda chunk: sender.send_batch([OutgoingMessage(body(n)) for n in chunk]), chunks)
        failed = sum(result.failed for result in results)
    if failed:
        raise SystemExit(f"could not fill the queue: {failed} messages failed")


@contextmanager
def fresh_queue(
    client: SQSClient, count: int, visibility_timeout: int, body: Callable[[int], str] = "m-{}".format
) -> Iterator[str]:
    url = client.create_queue(
        QueueName=f"bench-{uuid.uuid4().hex[:12]}", Attributes={"VisibilityTimeout": str(visibility_timeout)}
    )["QueueUrl"]
    try:
        fill(client, url, count, body)
        yield url
    finally:
        client.delete_queue(QueueUrl=url)


def owners_handler(handled: Handled) -> Callable[[SqsMessage], None]:
    """The app's own ``handle_message``, counted."""
    from {{ cookiecutter.package_name }}.handler import handle_message

    def handle(message: SqsMessage) -> None:
        handle_message(message)
        handled.add(message.body)

    return handle


def sleeper(milliseconds: float, handled: Handled) -> Callable[[SqsMessage], None]:
    def handle(message: SqsMessage) -> None:
        time.sleep(milliseconds / 1000)
        handled.add(message.body)

    return handle


def app_client(settings: Settings, endpoint: str) -> SQSClient:
    """The app's own client (its config and pool), pointed at ``endpoint``."""
    from {{ cookiecutter.package_name }}.engine.aws_session import reset_clients, sqs_client

    os.environ["AWS_ENDPOINT_URL"] = endpoint
    reset_clients()
    return sqs_client(settings)


def bodies(args: argparse.Namespace) -> Callable[[int], str]:
    """What the queue is filled with: the samples the app's handler accepts, or numbered bodies."""
    if args.handler != "app":
        return "m-{}".format
    from {{ cookiecutter.package_name }}.ops.local_dev.sample_messages import good_message, new_run_id

    run = new_run_id()
    return lambda number: good_message(run, number)


def settings_for(args: argparse.Namespace, concurrency: int) -> Settings:
    from {{ cookiecutter.package_name }}.engine.settings import Settings

    return Settings(
        input_queue="benchmark",
        output_queue="benchmark",
        dlq="",
        region=args.region,
        max_concurrency=concurrency,
        auth_mode="default_chain",
    )


def options_for(args: argparse.Namespace, concurrency: int) -> DrainOptions:
    from {{ cookiecutter.package_name }}.engine.consumer import DrainOptions

    return DrainOptions(
        max_concurrency=concurrency, budget_seconds=3_600, visibility_timeout_seconds=args.visibility_timeout
    )


def at_rtt(
    args: argparse.Namespace, endpoint: str, direct: SQSClient, rtt_ms: float
) -> tuple[list[Figures], IdleTick]:
    from {{ cookiecutter.package_name }}.engine.consumer import drain

    figures: list[Figures] = []
    with latency_proxy_process(endpoint, one_way_ms=rtt_ms / 2) as proxy_url:
        for concurrency in args.concurrency:
            client = app_client(settings_for(args, concurrency), proxy_url)
            meter = Meter(client)
            with fresh_queue(direct, args.messages, args.visibility_timeout, bodies(args)) as url:
                handled = Handled()
                handler = sleeper(args.handler_ms, handled)
                if args.handler == "app":
                    handler = owners_handler(handled)
                started = meter.reset()
                drain(client, url, handler, options_for(args, concurrency))
                name = f"drain, {concurrency} at once"
                figures.append(
                    handled.figures(
                        rtt_ms,
                        name,
                        args.messages,
                        started=started,
                        meter=meter,
                    )
                )
            report(figures[-1])
        idle = idle_tick(args, direct, proxy_url, rtt_ms, 1.0)
    return figures, idle


def idle_tick(
    args: argparse.Namespace, direct: SQSClient, endpoint: str, rtt_ms: float, linger: float
) -> IdleTick:
    """One pass on an empty queue with the app's defaults (SQS_WAIT_TIME_SECONDS 20)."""
    from {{ cookiecutter.package_name }}.engine.consumer import drain

    client = app_client(settings_for(args, 32), endpoint)
    meter = Meter(client)
    options = replace(options_for(args, 32), linger_seconds=linger)
    with fresh_queue(direct, 0, args.visibility_timeout) as url:
        meter.reset()
        summary = drain(client, url, lambda _: None, options)
    tick = IdleTick(rtt_ms, linger, summary.duration_seconds, meter.receives)
    print(tick, file=sys.stderr)
    return tick


def report(figures: Figures) -> None:
    print(figures, file=sys.stderr)


def figures_table(figures: list[Figures]) -> list[str]:
    """One row per run: the drain's, and the template's simple loops beside it (benchmarks/simple_loops)."""
    lines = [
        "| RTT (ms) | consumer | messages | handled/s | deleted/s | duplicates | lost | requests/message"
        " | busy requests/message |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    return lines + [
        f"| {f.rtt_ms:g} | {f.name} | {f.messages} | {f.handled_per_second:,.0f}"
        f" | {f.deleted_per_second:,.0f} | {f.duplicates} | {f.lost} | {f.requests_per_message:.3f}"
        f" | {f.busy_requests_per_message:.3f} |"
        for f in figures
    ]


def table(figures: list[Figures], idle: list[IdleTick]) -> str:
    lines = figures_table(figures)
    lines += ["", "| RTT (ms) | idle tick (s) | receives |", "|---:|---:|---:|"]
    lines += [f"| {t.rtt_ms:g} | {t.seconds:.2f} | {t.receives} |" for t in idle]
    drains = [f for f in figures if f.name.startswith("drain")]
    lines.append("")
    for concurrency_name in dict.fromkeys(f.name for f in drains):
        same = [f for f in drains if f.name == concurrency_name]
        base = next((f for f in same if f.rtt_ms == 0), None)
        for f in same:
            if base and f.rtt_ms and base.deleted_per_second:
                share = f.deleted_per_second / base.deleted_per_second
                lines.append(
                    f"- {concurrency_name}: deleted/s at {f.rtt_ms:g} ms RTT is {share:.0%} of 0 ms"
                    " (target: 75% at 80 ms)"
                )
    lines += [
        f"- drain duplicates, all runs: {sum(f.duplicates for f in drains)} (target: 0)",
        f"- drain requests per message when busy, worst: "
        f"{max((f.busy_requests_per_message for f in drains), default=0):.3f} (target: 0.21 at most)",
        f"- idle tick, worst: {max((t.seconds for t in idle), default=0):.2f} s (target: 1.5 s at most)",
    ]
    return "\n".join(lines)


def billed_seconds(tick_seconds: float) -> float:
    return delivery_plan.flex_billed_seconds(tick_seconds)


def cost_table(ticks: list[IdleTick]) -> str:
    """Delivery latency and idle cost, computed from the measured tick durations.

    A message sent to an idle queue at a uniformly random time waits for the next tick,
    unless a pass is running (then it starts within a round trip): the p-quantile of the
    wait is max(0, p x schedule - tick).
    """
    memory = " | ".join(f"idle GB-s/month at {mb} MB (USD)" for mb in FLEX_MEMORY_MB)
    lines = [
        f"| schedule | linger (s) | measured idle tick (s) | latency p50 (s) | latency p99 (s) | {memory} |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(FLEX_MEMORY_MB),
    ]
    for schedule in SCHEDULES_SECONDS:
        for tick in ticks:
            ticks_a_month = SECONDS_PER_MONTH / schedule
            gb_seconds = [ticks_a_month * billed_seconds(tick.seconds) * mb / 1024 for mb in FLEX_MEMORY_MB]
            costs = " | ".join(f"{gbs:,.0f} (${gbs * FLEX_PRICE_PER_GB_SECOND:,.2f})" for gbs in gb_seconds)
            p50 = max(0.0, 0.5 * schedule - tick.seconds)
            p99 = max(0.0, 0.99 * schedule - tick.seconds)
            lines.append(
                f"| every {schedule} s | {tick.linger_seconds:g} | {tick.seconds:.2f}"
                f" | {p50:.1f} | {p99:.1f} | {costs} |"
            )
    return "\n".join(lines)


def environment(endpoint: str, started_moto: bool, args: argparse.Namespace) -> str:
    where = "moto server started by this script (rates measure moto)" if started_moto else endpoint
    return (
        f"endpoint: {where}; handler {handler_name(args)}; visibility timeout {args.visibility_timeout} s; "
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()},"
        f" {os.cpu_count()} CPUs"
    )


def handler_name(args: argparse.Namespace) -> str:
    return "the app's handle_message" if args.handler == "app" else f"sleeps {args.handler_ms:g} ms"


@contextmanager
def endpoint_for(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from {{ cookiecutter.package_name }}.ops.local_dev.emulator import start_emulator

    emulator = start_emulator(port=0)  # the app's embedded emulator, on a free port
    try:
        yield emulator.url
    finally:
        emulator.stop()


def numbers(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.drain_benchmark", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--endpoint-url", help="an SQS endpoint (default: start a moto server)")
    parser.add_argument(
        "--rtt-ms", type=numbers, default=[0, 20, 80, 160], help="round trips, e.g. 0,20,80,160"
    )
    parser.add_argument(
        "--messages", type=int, help="messages per drain run (default: 2,000; 300 on the moto it starts)"
    )
    parser.add_argument(
        "--handler",
        choices=["sleep", "app"],
        default="sleep",
        help="sleep: a handler that sleeps --handler-ms; app: your handle_message, on the local samples",
    )
    parser.add_argument("--handler-ms", type=float, default=20.0)
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(n) for n in numbers(text)],
        default=[32],
        help="the drain's SQS_MAX_CONCURRENCY, e.g. 32,128,256",
    )
    parser.add_argument("--visibility-timeout", type=int, default=20, help="seconds (default 20)")
    parser.add_argument("--lingers", type=numbers, default=[0, 1, 5], help="linger values for the idle cost")
    parser.add_argument("--idle-rtt-ms", type=float, default=80.0, help="round trip of the linger sweep")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    if args.messages is None:
        # moto's receive time grows with the queue's depth: 2,000 would take many minutes.
        args.messages = 2_000 if args.endpoint_url else MOTO_MESSAGES
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    figures: list[Figures] = []
    idle: list[IdleTick] = []
    with endpoint_for(args.endpoint_url) as endpoint:
        direct = app_client(settings_for(args, 32), endpoint)
        print(f"queues of {args.messages} messages on {endpoint} ...", file=sys.stderr)
        for rtt in args.rtt_ms:
            at, tick = at_rtt(args, endpoint, direct, rtt)
            figures += at
            idle.append(tick)
        with latency_proxy_process(endpoint, one_way_ms=args.idle_rtt_ms / 2) as proxy_url:
            sweep = [idle_tick(args, direct, proxy_url, args.idle_rtt_ms, linger) for linger in args.lingers]
            before = idle_tick(args, direct, proxy_url, args.idle_rtt_ms, 20.0)
    print(table(figures, idle))
    print()
    print(f"Idle cost at {args.idle_rtt_ms:g} ms RTT, computed from the measured tick durations:")
    print()
    print(cost_table([*sweep, replace(before, linger_seconds=20.0)]))
    print()
    print(environment(endpoint, not args.endpoint_url, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
