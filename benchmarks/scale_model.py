"""A simulation of queue depth over time with fan-out, next to Lambda's SQS ramp. Not a test.

It runs no code of the app against SQS: it models, one second at a time, what the app's
pieces do, with the figures they were measured at:

- the timer ticks every ``--tick-seconds``; a tick's pass drains at ``--rate`` messages/s
  (one instance; the drain benchmark's figure) for at most ``--budget-seconds``;
- 5 s into the pass it puts K - 1 tokens, K = ceil(backlog / (rate x budget)), at most the
  worker cap (``SQS_SCALE_OUT_MAX_WORKERS``);
- the scale controller (target-based, ``batchSize`` 1) wants one instance per token on the
  queue, running or waiting; every ``--scale-every-seconds`` it adds up to 4, each ready
  after ``--cold-start-seconds``; a ready instance takes a token and drains one pass;
  tokens older than one budget are dropped;
- Lambda's SQS poller starts at 5 concurrent batches and adds up to 300 a minute, to the same
  cap; each concurrent batch of ``--lambda-batch`` messages runs its handler per message, one
  after another (``--handler-ms``) plus ``--lambda-overhead-ms`` per invocation.

Scenarios: a burst of 1,000,000 messages at once; a step (``--step-rate`` messages/s for
an hour); a daily wave (arrivals swinging between 0 and ``--wave-peak`` messages/s over 24 h).

    python -m benchmarks.scale_model
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

Arrivals = Callable[[int], float]
SAMPLE_AFTER_SECONDS = 5
SCALE_STEP_INSTANCES = 4
LAMBDA_START_BATCHES = 5
LAMBDA_ADDED_PER_MINUTE = 300
DAY = 86_400


@dataclass(frozen=True)
class Model:
    rate: float
    budget: int
    tick: int
    scale_every: int
    cold_start: int
    lambda_rate: float


@dataclass
class Outcome:
    cleared_at: int | None = None
    peak_depth: float = 0.0
    peak_drains: int = 0
    drain_seconds: int = 0  # instance time spent draining: what the plan bills
    tokens: int = 0
    depth_at: dict[int, float] = field(default_factory=dict)


def simulate_app(
    model: Model,
    cap: int,
    arrivals: Arrivals,
    *,
    backlog: float,
    seconds: int,
    quiet_after: int | None = None,
) -> Outcome:
    """Fan-out as built: the timer's pass, its tokens, and instances following them."""
    out = Outcome()
    pass_started: int | None = None
    waiting: list[int] = []  # issue times of tokens not yet taken
    workers: list[int] = []  # end times of token passes running
    ready_idle = 0
    coming: list[int] = []  # ready times of instances starting
    for t in range(seconds):
        # The timer: one pass at a time; a tick that finds a pass running is skipped.
        if pass_started is not None and t - pass_started >= model.budget:
            pass_started = None
        if pass_started is None and t % model.tick == 0:
            pass_started = t
        if pass_started is not None and t - pass_started == SAMPLE_AFTER_SECONDS and cap:
            passes = math.ceil(backlog / (model.rate * model.budget)) if backlog else 0
            tokens = min(max(passes - 1, 0), cap)
            waiting += [t] * tokens
            out.tokens += tokens
        # The scale controller: one instance per token on the queue (waiting or running).
        waiting = [issued for issued in waiting if t - issued <= model.budget]
        ended = [end for end in workers if end <= t]
        workers = [end for end in workers if end > t]
        ready_idle += len(ended)
        ready_idle += sum(1 for ready in coming if ready <= t)
        coming = [ready for ready in coming if ready > t]
        if t % model.scale_every == 0:
            desired = len(waiting) + len(workers)
            have = ready_idle + len(coming) + len(workers)
            if desired > have:
                coming += [t + model.cold_start] * min(SCALE_STEP_INSTANCES, desired - have)
            elif desired < have:
                ready_idle = max(0, ready_idle - (have - desired))
        while ready_idle and waiting:
            waiting.pop(0)
            ready_idle -= 1
            workers.append(t + model.budget)
        drains = (pass_started is not None) + len(workers)
        backlog += arrivals(t)
        done = min(backlog, drains * model.rate)
        backlog -= done
        if backlog < 1 and not arrivals(t):
            backlog = 0.0
            pass_started, workers, ready_idle = None, [], ready_idle + len(workers)  # empty polls end them
        _observe(out, t, backlog, drains)
        if quiet_after is not None and t >= quiet_after and out.cleared_at is not None:
            break
    return out


def simulate_lambda(
    model: Model,
    cap: int,
    arrivals: Arrivals,
    *,
    backlog: float,
    seconds: int,
    quiet_after: int | None = None,
) -> Outcome:
    """Lambda's SQS event source: 5 concurrent batches, then up to 300 more a minute, to ``cap``."""
    out = Outcome()
    batches = float(min(LAMBDA_START_BATCHES, cap))
    for t in range(seconds):
        backlog += arrivals(t)
        if backlog:
            batches = min(float(cap), batches + LAMBDA_ADDED_PER_MINUTE / 60)
        done = min(backlog, int(batches) * model.lambda_rate)
        backlog -= done
        if backlog < 1 and not arrivals(t):
            backlog = 0.0
            batches = float(min(LAMBDA_START_BATCHES, cap))
        _observe(out, t, backlog, int(batches) if done else 0)
        if quiet_after is not None and t >= quiet_after and out.cleared_at is not None:
            break
    return out


def _observe(out: Outcome, t: int, backlog: float, drains: int) -> None:
    out.peak_depth = max(out.peak_depth, backlog)
    out.peak_drains = max(out.peak_drains, drains)
    out.drain_seconds += drains
    if backlog == 0 and out.cleared_at is None:
        out.cleared_at = t + 1
    elif backlog > 0:
        out.cleared_at = None
    if t % 600 == 0:
        out.depth_at[t] = backlog


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "not cleared"
    hours, rest = divmod(seconds, 3_600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale_model", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rate", type=float, default=585.0, help="one drain's msg/s (drain benchmark)")
    parser.add_argument("--budget-seconds", type=int, default=1_500, help="SQS_DRAIN_BUDGET_SECONDS")
    parser.add_argument("--tick-seconds", type=int, default=60, help="the poll schedule's period")
    parser.add_argument("--scale-every-seconds", type=int, default=10)
    parser.add_argument("--cold-start-seconds", type=int, default=10)
    parser.add_argument("--handler-ms", type=float, default=20.0)
    parser.add_argument("--lambda-batch", type=int, default=10)
    parser.add_argument("--lambda-overhead-ms", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=1_000_000)
    parser.add_argument("--step-rate", type=float, default=3_000.0)
    parser.add_argument("--wave-peak", type=float, default=3_000.0)
    parser.add_argument("--caps", type=int, nargs="+", default=[1, 10, 100])
    args = parser.parse_args(argv)
    lambda_batch_seconds = args.lambda_batch * args.handler_ms / 1000 + args.lambda_overhead_ms / 1000
    model = Model(
        rate=args.rate,
        budget=args.budget_seconds,
        tick=args.tick_seconds,
        scale_every=args.scale_every_seconds,
        cold_start=args.cold_start_seconds,
        lambda_rate=args.lambda_batch / lambda_batch_seconds,
    )

    def step(t: int) -> float:
        return float(args.step_rate) if t < 3_600 else 0.0

    def wave(t: int) -> float:
        return float(args.wave_peak) * (1 - math.cos(2 * math.pi * t / DAY)) / 2

    print(
        f"Model: one drain {model.rate:g} msg/s, budget {model.budget} s, tick every {model.tick} s; "
        f"+{SCALE_STEP_INSTANCES} instances every {model.scale_every} s, {model.cold_start} s cold start. "
        f"Lambda: one batch of {args.lambda_batch} at {model.lambda_rate:.1f} msg/s "
        f"({args.handler_ms:g} ms per message + {args.lambda_overhead_ms:g} ms per invocation), "
        f"{LAMBDA_START_BATCHES} batches then +{LAMBDA_ADDED_PER_MINUTE}/min."
    )
    print()
    print(f"Burst: {args.burst:,} messages at once; time to clear")
    print()
    print(
        "| SQS_SCALE_OUT_MAX_WORKERS (Lambda: that + 1 batches) | this app | drains at peak"
        " | drain instance-hours | Lambda |"
    )
    print("|---:|---:|---:|---:|---:|")
    horizon = 2 * DAY
    for cap in args.caps:
        app = simulate_app(
            model, cap, lambda _: 0.0, backlog=float(args.burst), seconds=horizon, quiet_after=0
        )
        # The app's cap counts extra drains: the timer's pass is one more.
        aws = simulate_lambda(
            model, cap + 1, lambda _: 0.0, backlog=float(args.burst), seconds=horizon, quiet_after=0
        )
        print(
            f"| {cap} | {duration(app.cleared_at)} | {app.peak_drains} | {app.drain_seconds / 3_600:.1f}"
            f" | {duration(aws.cleared_at)} |"
        )
    print()
    print(f"Step: {args.step_rate:,.0f} msg/s for 1 h, then none; peak depth, and when the queue is empty")
    print()
    print("| at most | this app: peak depth | cleared at | Lambda: peak depth | cleared at |")
    print("|---:|---:|---:|---:|---:|")
    for cap in args.caps:
        app = simulate_app(model, cap, step, backlog=0.0, seconds=horizon, quiet_after=3_600)
        aws = simulate_lambda(model, cap + 1, step, backlog=0.0, seconds=horizon, quiet_after=3_600)
        print(
            f"| {cap} | {app.peak_depth:,.0f} | {duration(app.cleared_at)}"
            f" | {aws.peak_depth:,.0f} | {duration(aws.cleared_at)} |"
        )
    print()
    print(f"Daily wave: 0 to {args.wave_peak:,.0f} msg/s and back over 24 h; depth every 4 h (this app)")
    print()
    hours = list(range(0, 25, 4))
    print("| at most | " + " | ".join(f"{h} h" for h in hours) + " | peak | Lambda peak |")
    print("|---:|" + "---:|" * (len(hours) + 2))
    for cap in args.caps:
        app = simulate_app(model, cap, wave, backlog=0.0, seconds=DAY + 1)
        aws = simulate_lambda(model, cap + 1, wave, backlog=0.0, seconds=DAY + 1)
        depths = " | ".join(f"{app.depth_at.get(h * 3_600, 0.0):,.0f}" for h in hours)
        print(f"| {cap} | {depths} | {app.peak_depth:,.0f} | {aws.peak_depth:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
