"""A simulation of queue depth over time with fan-out, next to Lambda's SQS ramp. Not a test.

It drives the app's own scale-out code (``engine/scale_out``: ``FanOut`` and the decision it
calls, imported from a default bake) with simulated readings, one second at a time:

- the timer ticks every ``--tick-seconds``; a tick whose pass is still running is skipped;
- every drain (the tick's pass, or a token's pass on its own instance) handles ``--rate``
  messages/s (the drain benchmark's figure) for at most ``--budget-seconds``; drains beyond
  what the arrivals need end once the queue is empty (their polls come back empty);
- every 5 s the tick's pass calls ``FanOut.on_progress``: it reads the backlog, the token
  passes running (their slots) and the tokens queued, and puts the tokens it decides;
- the scale controller (target-based, ``batchSize`` 1) wants one instance per token on the
  queue, waiting or running; every ``--scale-every-seconds`` it adds up to 4, each ready after
  ``--cold-start-seconds``; a ready instance takes a token and drains, if a slot is free
  (at most the cap of token passes); tokens older than one budget expire;
- beside the app's law, the fastest any law could be here: the whole cap, every second there is
  a backlog, on the same ticks, scale controller and cold starts;
- Lambda's SQS poller starts at 5 concurrent batches and adds up to 300 a minute, to the same
  cap; each concurrent batch of ``--lambda-batch`` messages runs its handler per message, one
  after another (``--handler-ms``) plus ``--lambda-overhead-ms`` per invocation.

Billing: Flex Consumption bills the instance memory while executions run, so the GB-s are the
drain-seconds times ``--instance-memory-mb``; Lambda's are its batch-seconds times
``--lambda-memory-mb``.

Scenarios: a burst of 1,000,000 messages at once; a step (``--step-rate`` messages/s for an
hour); a step that starts 2 minutes into a burst; a daily wave (arrivals swinging between 0
and ``--wave-peak`` messages/s over 24 h).

    python -m benchmarks.scale_model
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from .baked_app import bake, engine_module

Arrivals = Callable[[int], float]
SCALE_STEP_INSTANCES = 4
LAMBDA_START_BATCHES = 5
LAMBDA_ADDED_PER_MINUTE = 300
HOUR = 3_600
DAY = 86_400


@dataclass(frozen=True)
class Model:
    rate: float
    sample_every: int  # the app's progress period (engine/scale_out/pass_leases.py)
    budget: int
    tick: int
    scale_every: int
    cold_start: int
    lambda_rate: float
    instance_gb: float
    lambda_gb: float


@dataclass
class Outcome:
    cleared_at: int | None = None
    peak_depth: float = 0.0
    peak_drains: int = 0
    drain_seconds: int = 0  # execution time on instances: what Flex bills
    tokens: int = 0
    tokens_dropped: int = 0  # taken with every slot held: the cap held
    depth_at: dict[int, float] = field(default_factory=dict)


class SimulatedLease:
    def __init__(self) -> None:
        self.lost = threading.Event()

    def renew(self) -> bool:
        return True

    def release(self) -> None:
        pass


class SimulatedSlots:
    """The pass slots as the simulation holds them: the tick's, and one per running token pass."""

    def __init__(self, token_passes: Callable[[], int]) -> None:
        self._token_passes = token_passes

    def claim(self, slots: list[str]) -> SimulatedLease:
        return SimulatedLease()

    def running(self) -> int:
        return self._token_passes()


@dataclass
class TickPass:
    started: int
    fan_out: Any
    handled: float = 0.0


def simulate_app(
    engine: ModuleType,
    settings: Any,
    model: Model,
    arrivals: Arrivals,
    *,
    backlog: float,
    seconds: int,
    quiet_after: int | None = None,
    fastest: bool = False,
) -> Outcome:
    """The app as built: the timer's pass and its fan-out (the real code), token passes, instances.

    ``fastest`` swaps the app's law for the most eager one: the whole cap, every second there is a
    backlog. On the same platform (ticks, scale controller, cold starts) no law does better, so it
    is the bound the cap and the platform put on the app's figures.
    """
    out = Outcome()
    cap = settings.scale_out_max_workers
    now = 0
    tick: TickPass | None = None
    waiting: list[int] = []  # issue times of tokens on the queue, not yet taken
    workers: list[int] = []  # start times of token passes running
    ready_idle = 0
    coming: list[int] = []  # ready times of instances starting
    state = {"backlog": backlog}

    def put(tokens: Sequence[Any]) -> int:
        waiting.extend([now] * len(tokens))
        out.tokens += len(tokens)
        return len(tokens)

    def new_fan_out() -> Any:
        return engine.FanOut(
            settings,
            slots=SimulatedSlots(lambda: len(workers)),
            backlog=lambda: math.ceil(state["backlog"]),
            tokens_queued=lambda: len(waiting) + len(workers),
            put=put,
            clock=lambda: float(now),
        )

    for now in range(seconds):
        if tick is not None and now - tick.started >= model.budget:
            tick = None
        if tick is None and now % model.tick == 0:
            tick = TickPass(now, new_fan_out())
            tick.fan_out.start()
        if fastest and tick is not None and state["backlog"] >= 1:
            put([None] * (cap - len(waiting) - len(workers)))
        elif tick is not None and now > tick.started and (now - tick.started) % model.sample_every == 0:
            summary = engine.DrainSummary(succeeded=round(tick.handled), duration_seconds=now - tick.started)
            tick.fan_out.on_progress(summary)
        # The scale controller: one instance per token on the queue (waiting or running).
        waiting = [issued for issued in waiting if now - issued <= model.budget]
        ended = [start for start in workers if now - start >= model.budget]
        workers = [start for start in workers if now - start < model.budget]
        ready_idle += len(ended) + sum(1 for ready in coming if ready <= now)
        coming = [ready for ready in coming if ready > now]
        if now % model.scale_every == 0:
            desired = len(waiting) + len(workers)
            have = ready_idle + len(coming) + len(workers)
            if desired > have:
                coming += [now + model.cold_start] * min(SCALE_STEP_INSTANCES, desired - have)
            elif desired < have:
                ready_idle = max(0, ready_idle - (have - desired))
        while ready_idle and waiting:
            waiting.pop(0)
            if len(workers) < cap:  # a free slot: the token's pass runs
                workers.append(now)
                ready_idle -= 1
            else:
                out.tokens_dropped += 1
        drains = (tick is not None) + len(workers)
        state["backlog"] += arrivals(now)
        done = min(state["backlog"], drains * model.rate)
        state["backlog"] -= done
        if tick is not None:
            tick.handled += done / drains
        if state["backlog"] < 1:
            # Drains the arrivals do not need find the queue empty for the linger, and end.
            state["backlog"] = 0.0
            needed = math.ceil(arrivals(now) / model.rate)
            keep = max(0, needed - (tick is not None))
            ready_idle += max(0, len(workers) - keep)
            workers = workers[:keep]
            if needed == 0 and tick is not None:
                tick.fan_out.finish()
                tick = None
        _observe(out, now, state["backlog"], drains)
        if quiet_after is not None and now >= quiet_after and out.cleared_at is not None:
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
        busy = int(batches) if done else 0
        if done and backlog == 0:
            busy = min(busy, math.ceil(done / model.lambda_rate))
        _observe(out, t, backlog, busy)
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


def scale_out_engine() -> tuple[ModuleType, Any]:
    """The app's fan-out and its default settings, from a default bake (the code the app runs)."""
    app: Path = bake()
    fan_out = engine_module(app, "scale_out.fan_out")
    consumer = engine_module(app, "consumer")
    settings = engine_module(app, "settings").Settings(input_queue="in", output_queue="out", dlq="")

    class Engine:
        FanOut = fan_out.FanOut
        DrainSummary = consumer.DrainSummary
        SAMPLE_EVERY_SECONDS = engine_module(app, "scale_out.pass_leases").SAMPLE_EVERY_SECONDS

    return Engine, settings  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale_model", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--rate", type=float, default=585.0, help="one drain's msg/s (drain benchmark)")
    parser.add_argument("--budget-seconds", type=int, default=None, help="default: the bake's budget")
    parser.add_argument("--tick-seconds", type=int, default=60, help="the poll schedule's period")
    parser.add_argument("--target-lag-seconds", type=float, default=None, help="default: the app's")
    parser.add_argument("--scale-every-seconds", type=int, default=10)
    parser.add_argument("--cold-start-seconds", type=int, default=10)
    parser.add_argument("--instance-memory-mb", type=int, default=2_048, help="Flex: 512, 2048 or 4096")
    parser.add_argument("--handler-ms", type=float, default=20.0)
    parser.add_argument("--lambda-batch", type=int, default=10)
    parser.add_argument("--lambda-overhead-ms", type=float, default=20.0)
    parser.add_argument("--lambda-memory-mb", type=int, default=512)
    parser.add_argument("--burst", type=int, default=1_000_000)
    parser.add_argument("--step-rate", type=float, default=3_000.0)
    parser.add_argument("--wave-peak", type=float, default=3_000.0)
    parser.add_argument("--caps", type=int, nargs="+", default=[1, 10, 100])
    args = parser.parse_args(argv)
    engine, defaults = scale_out_engine()
    budget = int(args.budget_seconds or defaults.drain_budget_seconds)
    lag = args.target_lag_seconds or defaults.scale_out_target_lag_seconds
    defaults = replace(defaults, drain_budget_seconds=float(budget), scale_out_target_lag_seconds=lag)
    lambda_batch_seconds = args.lambda_batch * args.handler_ms / 1000 + args.lambda_overhead_ms / 1000
    model = Model(
        rate=args.rate,
        sample_every=int(engine.SAMPLE_EVERY_SECONDS),
        budget=budget,
        tick=args.tick_seconds,
        scale_every=args.scale_every_seconds,
        cold_start=args.cold_start_seconds,
        lambda_rate=args.lambda_batch / lambda_batch_seconds,
        instance_gb=args.instance_memory_mb / 1024,
        lambda_gb=args.lambda_memory_mb / 1024,
    )

    def step(t: int) -> float:
        return float(args.step_rate) if t < HOUR else 0.0

    def step_during_burst(t: int) -> float:
        return float(args.step_rate) if 120 <= t < 120 + HOUR else 0.0

    def wave(t: int) -> float:
        return float(args.wave_peak) * (1 - math.cos(2 * math.pi * t / DAY)) / 2

    print("Assumptions (the app's scale-out code, fed simulated readings):")
    print(
        f"- one drain handles {model.rate:g} msg/s (the drain benchmark at 10 ms one-way to AWS); "
        f"budget {model.budget} s; a tick every {model.tick} s, sampling every {model.sample_every} s"
    )
    print(
        f"- the app's law: target lag {lag:g} s (SQS_SCALE_OUT_TARGET_LAG_SECONDS), activation "
        f"{defaults.scale_out_activation_backlog:,} messages (SQS_SCALE_OUT_ACTIVATION_BACKLOG)"
    )
    print(
        f"- Azure adds up to {SCALE_STEP_INSTANCES} instances every {model.scale_every} s, "
        f"each after a {model.cold_start} s cold start; an instance bills {args.instance_memory_mb} MB "
        "while its pass runs"
    )
    print(
        f"- Lambda: one batch of {args.lambda_batch} at {model.lambda_rate:.1f} msg/s "
        f"({args.handler_ms:g} ms per message + {args.lambda_overhead_ms:g} ms per invocation), "
        f"{LAMBDA_START_BATCHES} batches then +{LAMBDA_ADDED_PER_MINUTE}/min, to the cap + 1; "
        f"{args.lambda_memory_mb} MB"
    )
    scenarios: list[tuple[str, Arrivals, float, int, int | None]] = [
        (f"Burst: {args.burst:,} messages at once", lambda _: 0.0, float(args.burst), 2 * DAY, 0),
        (f"Step: {args.step_rate:,.0f} msg/s for 1 h, then none", step, 0.0, 2 * DAY, HOUR),
        (
            f"Step during a burst: {args.burst:,} at once, {args.step_rate:,.0f} msg/s for 1 h from 2 min",
            step_during_burst,
            float(args.burst),
            2 * DAY,
            120 + HOUR,
        ),
        (f"Daily wave: 0 to {args.wave_peak:,.0f} msg/s and back over 24 h", wave, 0.0, DAY + 1, None),
    ]
    for title, arrivals, backlog, horizon, quiet_after in scenarios:
        print()
        print(title)
        print()
        print(
            "| SQS_SCALE_OUT_MAX_WORKERS | cleared at | peak depth | peak drains | instance-hours | GB-s"
            " | fastest law: cleared at | peak depth"
            " | Lambda: cleared at | peak depth | peak batches | GB-s |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for cap in args.caps:
            settings = replace(defaults, scale_out_max_workers=cap)
            app, bound = (
                simulate_app(
                    engine,
                    settings,
                    model,
                    arrivals,
                    backlog=backlog,
                    seconds=horizon,
                    quiet_after=quiet_after,
                    fastest=fastest,
                )
                for fastest in (False, True)
            )
            # The app's cap counts drains besides the tick's: Lambda gets that + 1 batches.
            aws = simulate_lambda(
                model, cap + 1, arrivals, backlog=backlog, seconds=horizon, quiet_after=quiet_after
            )
            print(
                f"| {cap} | {duration(app.cleared_at)} | {app.peak_depth:,.0f} | {app.peak_drains}"
                f" | {app.drain_seconds / HOUR:,.1f} | {app.drain_seconds * model.instance_gb:,.0f}"
                f" | {duration(bound.cleared_at)} | {bound.peak_depth:,.0f}"
                f" | {duration(aws.cleared_at)} | {aws.peak_depth:,.0f} | {aws.peak_drains}"
                f" | {aws.drain_seconds * model.lambda_gb:,.0f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
