"""Delivery latency and billing of the drain's configurations under four traffic patterns, with the app's
real timer function fired as the Functions host fires it.

Not a test: it prints figures. From the project root:

    python -m benchmarks.latency_benchmark --period 10 --rtt-ms 80          # compressed: a tick every 10 s
    python -m benchmarks.latency_benchmark --period 60 --rtt-ms 80          # the default schedule (long)

For each pattern, one host per configuration (``benchmarks/timer_host.py``, a process of its own, on a
queue of its own) fires the app's ``drain_input_queue_on_timer`` on the schedule: passes never overlap,
a tick that falls due during a pass runs as soon as it ends, and each invocation is told the next
occurrence (the host's ScheduleStatus.Next). The configurations:

- ``default``: the app's settings as baked (what ``delivery_latency`` derived: on Flex and Consumption a
  pass stops after the 1 s linger);
- ``busy``: with busy stays fast (``SQS_POLL_WHILE_BUSY=true``);
- ``continuous``: polling until the next tick (``SQS_POLL_UNTIL_NEXT_TICK=true``), as ``delivery_latency=1``
  derives on every plan.

The patterns (``engine/delivery_plan.py`` names them, and the ``costs`` command bills them):

- ``idle``: no message at all for a while (its bill), then single messages, each on a quiet queue, at
  moments spread over a period (its latency);
- ``sparse``: a message every 5 s;
- ``bursts``: 2 minutes at a message a second, then 8 minutes of silence, repeated;
- ``uniform``: ``--messages`` at uniformly random times over ``--duration``.

A compressed schedule shortens, in the same ratio (``--period`` / 60), the spans counted in ticks: the
bursts, their silences and the quiet spell of busy stays fast. The gap between two messages, the linger
and the round trip stay as they are: what a message waits depends on them in seconds.

It prints, per pattern and configuration, the messages and passes, delivery latency (p50, p99; for
bursts also the p99 of the messages sent after their burst's first message was handled), the SQS
requests and a month's dollars on each plan (the bill of ``engine/delivery_plan.py``, its prices), beside
what the rule's simulation predicts for the same run. Billing: Flex bills the instance memory per
execution, at least 1 s, in 100 ms steps; Consumption the memory used (256 MB assumed); Premium its
instance by the hour. "A month" extrapolates each pattern's window at this schedule to 30 days.
``--baseline-app DIR`` runs another version of the app (an older bake, say) beside these, with its own
defaults, on the same messages: what an update changed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import subprocess
import sys
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from {{ cookiecutter.package_name }}.engine import delivery_plan as rule
from {{ cookiecutter.package_name }}.ops.commands import costs

from .drain_benchmark import endpoint_for
from .latency_proxy import latency_proxy_process

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

APP_ROOT = Path(__file__).resolve().parents[1]
HOST = Path(__file__).with_name("timer_host.py")
CONFIGURATIONS = {
    "default": {},
    "busy": {"SQS_POLL_WHILE_BUSY": "true"},
    "continuous": {"SQS_POLL_UNTIL_NEXT_TICK": "true"},
}
PATTERNS = ("idle", "sparse", "bursts", "uniform")
# With --baseline-app: the other app's timer, with its own defaults.
BASELINE = "baseline"
# Where each month's dollars are shown: the same passes and requests billed by each plan.
BILLED_ON = (
    ("Flex on demand", "flex_consumption", 0),
    ("Flex always ready", "flex_consumption", 1),
    ("Consumption", "consumption", 0),
    ("Premium EP1", "premium", 0),
)


@dataclass(frozen=True)
class Run:
    """A pattern as this run sends it: when each message goes (seconds after the first tick), the
    window whose passes are its bill, and from when messages count for latency."""

    pattern: rule.Pattern
    arrivals: list[float]
    billed_until: float
    latency_from: float = 0.0


@dataclass
class Outcome:
    """What one configuration did in a run: its passes in the billed window, their SQS requests, and
    the wait of each message that counts for latency (None: never handled)."""

    passes: list[float] = field(default_factory=list)
    requests: int = 0
    waits: list[float | None] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)

    def bill(self, run: Run, config: rule.Configuration) -> rule.Bill:
        handled = [w for w in self.waits if w is not None]
        return rule.billed(
            config,
            run.pattern,
            passes=self.passes,
            seconds=run.billed_until,
            latencies=handled,
            requests=self.requests,
            fifo=costs.FIFO,
            after_first_pickup=rule.after_first_pickup(
                run.pattern, self.sent, [math.inf if w is None else w for w in self.waits]
            )
            or None,
        )


def run_for(name: str, args: argparse.Namespace) -> Run:
    period = args.period
    if name == "idle":
        quiet = args.idle_ticks * period
        # Each message on a quiet queue: a quiet spell (one period) and a period after the one before.
        spacing = 3 * period
        count = args.probes
        probes = [quiet + n * spacing + (n + 0.5) / count * period for n in range(count)]
        return Run(rule.IDLE, probes, billed_until=quiet, latency_from=quiet)
    if name == "sparse":
        # Steady: the latency of the messages after the first period, as if they had always come.
        arrivals = rule.SPARSE.arrivals(args.duration, period)
        return Run(
            rule.SPARSE, arrivals, billed_until=args.duration, latency_from=period + rule.SPARSE.gap_seconds
        )
    if name == "bursts":
        bursts = rule.BURSTS.compressed(60.0 / period)
        span = args.bursts * (bursts.burst_seconds + bursts.silence_seconds)
        return Run(bursts, bursts.arrivals(span, period), billed_until=span)
    uniform = rule.Pattern("uniform", f"uniform ({args.messages} messages over {args.duration:g} s)")
    arrival = random.Random(args.seed)  # noqa: S311 (arrival times, not secrets)
    times = sorted(arrival.uniform(0, args.duration) for _ in range(args.messages))
    return Run(uniform, times, billed_until=args.duration)


def host_environment(
    drain_endpoint: str, queue_url: str, configuration: str, period: float
) -> dict[str, str]:
    kept = ("SQS_", "AWS_", "OTEL_", "APPLICATIONINSIGHTS_", "AzureWebJobs")
    env = {k: v for k, v in os.environ.items() if not k.startswith(kept)}
    return {
        **env,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_AUTH_MODE": "default_chain",
        "AWS_ENDPOINT_URL": drain_endpoint,
        "SQS_INPUT_QUEUE": queue_url,
        "SQS_OUTPUT_QUEUE": queue_url,
        # One drain's latency: no fan-out and no watchdog (both need Azure Storage), no telemetry exporter.
        "SQS_SCALE_OUT_MAX_WORKERS": "0",
        "SQS_WATCHDOG_MISSED_TICKS": "0",
        # The quiet spell is counted in ticks: compressed with the schedule (one period, as by default).
        "SQS_QUIET_SPELL_SECONDS": f"{period:g}",
        **CONFIGURATIONS.get(configuration, {}),
    }


def measure(run: Run, args: argparse.Namespace, client: SQSClient, drain_endpoint: str) -> dict[str, Outcome]:
    """One timer host per configuration, each on a fresh queue, and the run's messages sent to each."""
    period = args.period
    queues = {
        name: client.create_queue(QueueName=f"latency-{name}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        for name in args.configurations
    }
    # Time for the hosts to start, and for their warm-up tick one period before the first.
    first_tick = math.ceil((time.time() + 5 + period) / period) * period
    last = max([run.billed_until, *run.arrivals])
    until = first_tick + last + 2 * period + 1
    hosts = {}
    for name, url in queues.items():
        command = [sys.executable, str(HOST), "--period", f"{period:g}"]
        command += ["--first-tick", f"{first_tick:.3f}", "--until", f"{until:.3f}"]
        hosts[name] = subprocess.Popen(  # noqa: S603 (our interpreter and script)
            command,
            cwd=args.baseline_app if name == BASELINE else APP_ROOT,
            env=host_environment(drain_endpoint, url, name, period),
            stdout=subprocess.PIPE,
            text=True,
        )
    print(
        f"{run.pattern.name}: {len(run.arrivals)} messages, {until - first_tick:.0f} s ...", file=sys.stderr
    )
    urls = list(queues.values())
    for number, at in enumerate(run.arrivals):
        delay = first_tick + at - time.time()
        if delay > 0:
            time.sleep(delay)
        # Each queue first in turn: no configuration gets its messages a send earlier than another.
        for url in urls[number % len(urls) :] + urls[: number % len(urls)]:
            client.send_message(QueueUrl=url, MessageBody=f"m-{number}")
    outcomes = {}
    for name, process in hosts.items():
        stdout, _ = process.communicate(timeout=until - time.time() + 120)
        outcomes[name] = outcome_of(run, stdout, first_tick)
    for url in queues.values():
        client.delete_queue(QueueUrl=url)
    return outcomes


def outcome_of(run: Run, stdout: str, first_tick: float) -> Outcome:
    outcome = Outcome()
    waits: dict[str, float] = {}
    for line in stdout.splitlines():
        event = json.loads(line)
        if "pass" in event and 0 <= event["pass"]["started"] - first_tick < run.billed_until:
            outcome.passes.append(event["pass"]["seconds"])
            outcome.requests += event["pass"]["sqs_requests"]
        elif "message" in event:
            message = event["message"]
            waits.setdefault(message["body"], message["handled"] - message["sent"])
    for number, at in enumerate(run.arrivals):
        if at >= run.latency_from:
            outcome.sent.append(at)
            outcome.waits.append(waits.get(f"m-{number}"))
    return outcome


def simulated(run: Run, config: rule.Configuration, rtt: float) -> Outcome:
    """What the rule's simulation predicts for the same run (no depth reads: no telemetry exporter)."""
    end = max([run.billed_until, *run.arrivals]) + 3 * config.period_seconds
    waits = rule.simulate(config, run.arrivals, end, rtt=rtt, depth_reads=0)
    window = [at for at in run.arrivals if at < run.billed_until]
    billed = rule.simulate(config, window, run.billed_until, rtt=rtt, depth_reads=0)
    outcome = Outcome(passes=billed.passes, requests=billed.requests)
    for at, wait in zip(waits.arrivals, waits.latencies, strict=False):
        if at >= run.latency_from:
            outcome.sent.append(at)
            outcome.waits.append(wait)
    return outcome


def configuration_of(name: str, period: float) -> rule.Configuration:
    """The rule's view of a host's configuration at this schedule: the bake's, then the host's settings."""
    baked = rule.derive(costs.PLAN, costs.DELIVERY_LATENCY, costs.INSTANCE_MEMORY_MB)
    return replace(
        baked,
        plan="flex_consumption",
        period_seconds=round(period),
        continuous=baked.continuous or name == "continuous",
        poll_while_busy=name == "busy",
        quiet_spell=period,
        instance_memory_mb=int(costs.INSTANCE_MEMORY_MB) if costs.PLAN == "flex_consumption" else 2048,
        always_ready=0,
    )


def quantiles(bill: rule.Bill) -> str:
    after = "-" if bill.p99_after_first_pickup is None else f"{bill.p99_after_first_pickup:.2f}"
    return f"{bill.p50:.2f} | {bill.p99:.2f} | {after}"


def rows(run: Run, outcomes: dict[str, Outcome], args: argparse.Namespace) -> list[str]:
    lines = []
    for name, outcome in outcomes.items():
        config = configuration_of(name, args.period)
        flex = outcome.bill(run, config)
        model = simulated(run, config, args.rtt_ms / 1000).bill(run, config)
        handled = sum(w is not None for w in outcome.waits)
        dollars = " / ".join(
            f"${outcome.bill(run, replace(config, plan=plan, always_ready=ready)).usd:,.2f}"
            for _, plan, ready in BILLED_ON
        )
        lines.append(
            f"| {run.pattern.name} | {name} | {handled}/{len(outcome.waits)} | {len(outcome.passes)}"
            f" | {quantiles(flex)} | {quantiles(model)} | {flex.gb_seconds:,.0f} ({model.gb_seconds:,.0f})"
            f" | {flex.sqs_requests:,.0f} ({model.sqs_requests:,.0f}) | {dollars} |"
        )
    return lines


HEADER = [
    "| pattern | configuration | handled | passes | p50 (s) | p99 (s) | p99 after the first pickup (s)"
    " | model p50 | model p99 | model after | Flex GB-s a month (model) | SQS requests a month (model)"
    " | USD a month: " + " / ".join(label for label, _, _ in BILLED_ON) + " |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.latency_benchmark", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--endpoint-url", help="an SQS endpoint (default: start the embedded emulator)")
    parser.add_argument("--period", type=float, default=60.0, help="seconds between ticks (default 60)")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="round trip between the drains and SQS")
    parser.add_argument("--patterns", default=",".join(PATTERNS), help=f"some of {', '.join(PATTERNS)}")
    parser.add_argument(
        "--configurations", default=",".join(CONFIGURATIONS), help=f"some of {', '.join(CONFIGURATIONS)}"
    )
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of sparse and uniform traffic")
    parser.add_argument("--bursts", type=int, default=2, help="bursts, each with its silence")
    parser.add_argument("--idle-ticks", type=int, default=6, help="ticks without any message (the idle bill)")
    parser.add_argument(
        "--probes", type=int, default=8, help="idle: messages on a quiet queue, over a period"
    )
    parser.add_argument("--messages", type=int, default=60, help="uniform: messages over --duration")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--baseline-app",
        type=Path,
        help="another version of this app: its timer runs with its defaults beside these, as 'baseline'",
    )
    args = parser.parse_args(argv)
    args.configurations = [c.strip() for c in args.configurations.split(",") if c.strip()]
    if args.baseline_app:
        args.configurations.insert(0, BASELINE)
    patterns = [p.strip() for p in args.patterns.split(",") if p.strip()]
    unknown = sorted({*args.configurations} - {*CONFIGURATIONS, BASELINE}) + sorted(
        {*patterns} - set(PATTERNS)
    )
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)}")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    lines = list(HEADER)
    started = time.monotonic()
    with endpoint_for(args.endpoint_url) as endpoint:
        import boto3

        client = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        proxy = latency_proxy_process(endpoint, args.rtt_ms / 2) if args.rtt_ms else nullcontext(endpoint)
        with proxy as drain_endpoint:
            for name in patterns:
                run = run_for(name, args)
                lines.extend(rows(run, measure(run, args, client, drain_endpoint), args))
    print("\n".join(lines))
    print()
    where = "the embedded emulator (moto), started by this script" if not args.endpoint_url else endpoint
    memory = configuration_of("default", args.period).instance_memory_mb
    print(
        f"Ticks every {args.period:g} s (bursts, silences and the quiet spell compressed by"
        f" {60 / args.period:g}), RTT {args.rtt_ms:g} ms, {time.monotonic() - started:.0f} s in all;"
        f" baseline: {args.baseline_app or 'none'}; endpoint: {where}; Python {platform.python_version()} on"
        f" {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs. Bill of a month at this schedule,"
        f" before free grants; Flex at {memory:,} MB; prices of engine/delivery_plan.py"
        f" (read {rule.PRICES_READ})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
