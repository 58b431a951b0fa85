"""Delivery latency and what it costs: the rule behind the ``delivery_latency`` answer, in one place.

The answer is the p99, in seconds, that the owner wants for a message sent to a quiet queue. For the
plan and the instance memory, ``derive`` picks the cheapest configuration whose quiet-queue p99 meets it:

- the schedule (a tick every ``period_seconds``);
- tick polling (a pass ends after the linger) or continuous polling (a pass polls until the next tick);
- on Flex Consumption, an always-ready instance for the timer's function (``function:<name>``: a timer
  is scaled on its own, in no group), where that bills less than on-demand execution.

"Cheapest" is the bill of a month on a quiet queue (``IDLE``), before free grants: the plan's compute,
its executions and the SQS requests, at ``PRICES``. "Busy stays fast" (``poll_while_busy``) changes
nothing on a quiet queue and only adds cost under traffic, so the rule never turns it on; the bill
prints what it would cost. Its quiet spell defaults to one schedule period: a message that comes within
a period of the last one would otherwise wait up to a period, as long as the gap it bridges.

Latency and billing come from ``simulate``: the timer fired as the host fires it (never overlapping,
overrun ticks collapsed into one that runs at once, each pass told the next occurrence) and the drain's
polling policy (``consumer/receiving.py``) against messages that arrive as a pattern says, one round
trip (``rtt``) away. ``benchmarks/latency_benchmark.py`` measures the same figures on the emulator.

Read by the template before any file exists (``delivery_extension.py``: the Jinja of the settings table,
the Bicep and the README; ``hooks/pre_gen_project.py``: refusals), and by the app (the ``costs``
command, the benchmark). So it imports only the standard library, runs on cookiecutter's Python, and
holds no template syntax.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, replace

SECONDS_PER_MONTH = 30 * 86_400
HOURS_PER_MONTH = SECONDS_PER_MONTH / 3_600

# ---------------------------------------------------------------------------------------------------
# Prices: USD, pay as you go, East US, as read on PRICES_READ from the pages named in each source.
PRICES_READ = "2026-12-06"


@dataclass(frozen=True)
class Price:
    meter: str
    usd: float
    unit: str
    source: str


_FLEX_SOURCES = (
    "Microsoft Learn, Flex Consumption billing (billing modes; 1 s minimum, then 100 ms steps; no free "
    "grant for always ready); Azure Retail Prices API meters 'On Demand Execution Time', 'Always Ready "
    "Baseline', 'Always Ready Execution Time'; modal.com Azure Functions pricing guide (2025-05-22); an "
    "April 2025 North Europe cost comparison (EUR 0.000025 / 0.0000038 / 0.0000149 per GB-s)"
)
FLEX_ON_DEMAND_GB_SECOND = Price("Flex Consumption on demand execution time", 0.000026, "GB-s", _FLEX_SOURCES)
FLEX_ON_DEMAND_EXECUTIONS = Price("Flex Consumption on demand executions", 0.40, "million", _FLEX_SOURCES)
FLEX_ALWAYS_READY_BASELINE = Price("Flex Consumption always ready baseline", 0.000004, "GB-s", _FLEX_SOURCES)
FLEX_ALWAYS_READY_GB_SECOND = Price(
    "Flex Consumption always ready execution time", 0.000016, "GB-s", _FLEX_SOURCES
)
FLEX_ALWAYS_READY_EXECUTIONS = Price(
    "Flex Consumption always ready executions", 0.40, "million", _FLEX_SOURCES
)
_CONSUMPTION_SOURCE = (
    "azure.microsoft.com/pricing/details/functions (memory rounded up to 128 MB, at most 1,536 MB; "
    "100 ms minimum); modal.com Azure Functions pricing guide (2025-05-22)"
)
CONSUMPTION_GB_SECOND = Price("Consumption execution time", 0.000016, "GB-s", _CONSUMPTION_SOURCE)
CONSUMPTION_EXECUTIONS = Price("Consumption executions", 0.20, "million", _CONSUMPTION_SOURCE)
_PREMIUM_SOURCE = (
    "Azure Retail Prices API, East US meters 'Premium vCPU Duration' (0.173 per vCPU-hour) and 'Premium "
    "Memory Duration' (0.0123 per GiB-hour); EP1 is 1 vCPU and 3.5 GiB, at least one instance always"
)
PREMIUM_EP1_HOUR = Price("Elastic Premium EP1 instance", 0.173 + 3.5 * 0.0123, "hour", _PREMIUM_SOURCE)
_SQS_SOURCE = (
    "aws.amazon.com/sqs/pricing via cloudburn.io (2026-03-14) and factualminds.com (2026-06-13): "
    "first 1 million requests a month free; each 64 KB of a payload is one request"
)
SQS_STANDARD_REQUESTS = Price("SQS standard queue requests", 0.40, "million", _SQS_SOURCE)
SQS_FIFO_REQUESTS = Price("SQS FIFO queue requests", 0.50, "million", _SQS_SOURCE)
PRICES = (
    FLEX_ON_DEMAND_GB_SECOND,
    FLEX_ON_DEMAND_EXECUTIONS,
    FLEX_ALWAYS_READY_BASELINE,
    FLEX_ALWAYS_READY_GB_SECOND,
    FLEX_ALWAYS_READY_EXECUTIONS,
    CONSUMPTION_GB_SECOND,
    CONSUMPTION_EXECUTIONS,
    PREMIUM_EP1_HOUR,
    SQS_STANDARD_REQUESTS,
    SQS_FIFO_REQUESTS,
)
FREE_GRANTS = (
    "not applied: Flex on demand 100,000 GB-s and 250,000 executions a month; Consumption 400,000 GB-s "
    "and 1 million executions a month (per subscription); SQS 1 million requests a month (per account)"
)

# ---------------------------------------------------------------------------------------------------
# Plans and answers.
PLANS = ("flex_consumption", "premium", "consumption")
INSTANCE_MEMORY_MB = (512, 2_048, 4_096)
DEFAULT_INSTANCE_MEMORY_MB = 2_048
# Consumption bills the memory the app uses, rounded up to 128 MB: the drain's process, about 55 MB
# resident, under the host's worker. An assumption, like the round trip below.
CONSUMPTION_MEMORY_USED_MB = 256
# What the app's drain does: defaults of the settings table, which takes them from here.
LINGER_SECONDS = 1.0
# ...and what it is measured against.
DEFAULT_RTT_SECONDS = 0.080  # an Azure region and an AWS region a continent apart: 80-160 ms
LONGEST_POLL_SECONDS = 20  # SQS's longest long poll (SQS_WAIT_TIME_SECONDS)
RECEIVE_BATCH = 10  # SQS's most messages per receive
PASS_START_SECONDS = 0.05  # the function's start: settings, the client, the tick's pass slot
HANDLER_START_SECONDS = 0.005  # a received message reaches the handler
ACK_LINGER_SECONDS = 0.05  # a handled message waits this long for others to fill a delete batch
# With telemetry exporting (in Azure), each pass reads the input queue's and the DLQ's depths.
DEPTH_READS_PER_PASS = 2
# Continuous polling promises a second: a round trip between continents (160 ms), the handler's start
# and a message that arrives while one pass hands over to the next all fit in it. Nothing promises less.
FASTEST_PROMISE_SECONDS = 1.0

# Schedules the rule chooses from: NCRONTAB can space ticks evenly only by divisors of a minute or an
# hour. At most five minutes: the dead man's switch (15 minutes) needs three ticks in its window.
# Continuous polling keeps the one-minute schedule.
TICK_PERIODS = (2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 300)
CONTINUOUS_PERIOD = 60
DEFAULT_PERIOD = 60
# The oldest-message alarm (infra/aws/template.yaml) fires above twice a healthy worst case: a message
# retried 5 times (SQS_MAX_RECEIVE_COUNT's default), once a tick; never under 600 s (the backoff's
# doublings take longer than ticks a few seconds apart).
OLDEST_MESSAGE_RECEIVES = 5
OLDEST_MESSAGE_ALARM_AT_LEAST_SECONDS = 600


DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


class Refused(ValueError):
    """An answer no configuration meets, or not an answer at all: the field, the reason, what works."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


@dataclass(frozen=True)
class Configuration:
    """How the drain is run and paid for: the settings and Bicep values the answers derive."""

    plan: str
    period_seconds: int = DEFAULT_PERIOD
    continuous: bool = False
    poll_while_busy: bool = False
    # After this long without a message, busy passes end after the linger again; None: one period.
    quiet_spell: float | None = None
    instance_memory_mb: int = DEFAULT_INSTANCE_MEMORY_MB
    always_ready: int = 0
    linger_seconds: float = LINGER_SECONDS

    @property
    def schedule(self) -> str:
        """The NCRONTAB expression (six fields, seconds first) of a tick every ``period_seconds``."""
        if self.period_seconds < 60:
            return f"*/{self.period_seconds} * * * * *"
        return f"0 */{self.period_seconds // 60} * * * *"

    @property
    def oldest_message_alarm_seconds(self) -> int:
        """The default threshold of the oldest-message alarm for this schedule."""
        healthy_worst = OLDEST_MESSAGE_RECEIVES * self.period_seconds
        return max(OLDEST_MESSAGE_ALARM_AT_LEAST_SECONDS, 2 * healthy_worst)

    @property
    def quiet_spell_seconds(self) -> float:
        return float(self.period_seconds) if self.quiet_spell is None else self.quiet_spell

    @property
    def label(self) -> str:
        parts = [
            f"every {period_text(self.period_seconds)}, "
            + ("polling continuously" if self.continuous else "polling for the linger after each tick")
        ]
        if self.poll_while_busy and not self.continuous:
            parts.append(f"busy stays fast (quiet spell {self.quiet_spell_seconds:g} s)")
        if self.plan == "flex_consumption":
            parts.append(f"{self.instance_memory_mb:,} MB")
            if self.always_ready:
                parts.append(f"{self.always_ready} always-ready instance")
        return ", ".join(parts)

    def settings(self) -> dict[str, str]:
        """The app settings that give this configuration."""
        return {
            "SQS_POLL_SCHEDULE": self.schedule,
            "SQS_POLL_UNTIL_NEXT_TICK": str(self.continuous).lower(),
            "SQS_POLL_WHILE_BUSY": str(self.poll_while_busy).lower(),
            "SQS_QUIET_SPELL_SECONDS": str(self.quiet_spell_seconds),  # as the settings table writes it
        }

    def bicep(self) -> dict[str, int]:
        """The Bicep parameters that give it (Flex Consumption only)."""
        if self.plan != "flex_consumption":
            return {}
        return {"instanceMemoryMB": self.instance_memory_mb, "timerAlwaysReadyInstances": self.always_ready}


def period_text(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds:g} s"


# ---------------------------------------------------------------------------------------------------
# Traffic patterns.
@dataclass(frozen=True)
class Pattern:
    """How messages arrive. ``IDLE`` is a quiet queue: single messages far apart (its latency), and
    no message at all (its bill)."""

    name: str
    title: str
    gap_seconds: float = 0.0  # sparse steady: a message every gap
    burst_seconds: float = 0.0  # bursts: this long at a message every gap...
    silence_seconds: float = 0.0  # ...then this long with none, repeated

    def arrivals(self, until: float, period: float) -> list[float]:
        """When messages are sent, from 0 to ``until``, for ticks every ``period``: a steady pattern
        starts half a gap after a tick; each burst at its own moment of the period (golden-ratio steps
        spread them evenly), as traffic keeps no time with the schedule."""
        times: list[float] = []
        if self.name == "sparse":
            at = self.gap_seconds / 2
            while at < until:
                times.append(at)
                at += self.gap_seconds
        elif self.name == "bursts":
            cycle = self.burst_seconds + self.silence_seconds
            count = round(self.burst_seconds / self.gap_seconds)
            for burst in range(math.ceil(until / cycle)):
                start = burst * cycle + (burst * GOLDEN_STEP % 1.0) * period
                times.extend(start + n * self.gap_seconds for n in range(count))
        return [t for t in times if t < until]

    def compressed(self, factor: float) -> Pattern:
        """The pattern with its spans (bursts, silences) shortened by ``factor``, as a schedule is:
        time counted in ticks shrinks; the gap between two messages, like the linger and the round
        trip, stays (what a message waits depends on it in seconds)."""
        return replace(
            self, burst_seconds=self.burst_seconds / factor, silence_seconds=self.silence_seconds / factor
        )


GOLDEN_STEP = (math.sqrt(5) - 1) / 2
IDLE = Pattern("idle", "idle (a quiet queue)")
SPARSE = Pattern("sparse", "sparse steady (a message every 5 s)", gap_seconds=5.0)
BURSTS = Pattern(
    "bursts",
    "bursts (2 minutes at a message a second, then 8 minutes of silence)",
    gap_seconds=1.0,
    burst_seconds=120.0,
    silence_seconds=480.0,
)
PATTERNS = (IDLE, SPARSE, BURSTS)


# ---------------------------------------------------------------------------------------------------
# The simulation.
@dataclass
class Run:
    """What passes did over ``seconds``: each pass's length, each message's wait, the SQS requests."""

    seconds: float
    passes: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    receives: int = 0
    deletes: int = 0
    depth_reads: int = 0

    @property
    def requests(self) -> int:
        return self.receives + self.deletes + self.depth_reads


def simulate(
    config: Configuration,
    arrivals: list[float],
    until: float,
    *,
    rtt: float = DEFAULT_RTT_SECONDS,
    depth_reads: int = DEPTH_READS_PER_PASS,
) -> Run:
    """Ticks from 0 to ``until`` and the passes they fire, against messages sent at ``arrivals``."""
    return _Simulation(config, sorted(arrivals), until, rtt, depth_reads).run()


class _Simulation:
    def __init__(
        self, config: Configuration, messages: list[float], until: float, rtt: float, depth_reads: int
    ):
        self.config = config
        self.messages = messages
        self.until = until
        self.rtt = rtt
        self.depth_reads = depth_reads
        self.result = Run(seconds=until, arrivals=messages)
        self.waiting = 0  # the first message not received yet
        self.last_seen = -math.inf  # busy stays fast: the last message seen, remembered across passes

    def run(self) -> Run:
        period = float(self.config.period_seconds)
        scheduled, free_at = 0.0, 0.0
        while scheduled < self.until:
            started = max(scheduled, free_at)
            ended = self.one_pass(started, next_tick=scheduled + period)
            self.result.starts.append(started)
            self.result.passes.append(ended - started)
            free_at = ended
            # The next occurrence; those that fell due during the pass collapse into one that runs at once.
            scheduled = max(scheduled + period, math.floor(ended / period) * period)
        return self.result

    def one_pass(self, started: float, next_tick: float) -> float:
        """A pass from ``started``, as receiving.py's ``Polling`` polls; returns when it ends."""
        config, rtt = self.config, self.rtt
        now = started + PASS_START_SECONDS
        linger_until = now + config.linger_seconds
        if config.continuous:
            linger_until = max(linger_until, next_tick)
        if config.poll_while_busy:
            linger_until = max(linger_until, min(next_tick, self.last_seen + config.quiet_spell_seconds))
        last_ack = -math.inf
        while True:
            wait = min(LONGEST_POLL_SECONDS, max(0, math.ceil(linger_until - now - 1e-9)))
            at_sqs = now + rtt / 2
            self.result.receives += 1
            batch = self.receive(at_sqs, wait)
            if not batch:
                back = at_sqs + wait + rtt / 2
                if now + wait >= linger_until - 0.001:
                    break
                now = back
                continue
            back = max(at_sqs, batch[0]) + rtt / 2
            self.result.latencies.extend(back + HANDLER_START_SECONDS - sent for sent in batch)
            self.result.deletes += 1
            last_ack = back + HANDLER_START_SECONDS + ACK_LINGER_SECONDS + rtt
            # A full batch came back at once: the linger runs from the call, else from the receipt.
            seen_at = now if len(batch) == RECEIVE_BATCH else back
            linger_until = max(linger_until, seen_at + config.linger_seconds)
            if config.poll_while_busy:
                self.last_seen = seen_at
                linger_until = max(linger_until, min(next_tick, seen_at + config.quiet_spell_seconds))
            now = back
        self.result.depth_reads += self.depth_reads
        return max(back, last_ack) + self.depth_reads * rtt

    def receive(self, at_sqs: float, wait: int) -> list[float]:
        """The messages a receive reaching SQS at ``at_sqs`` and waiting up to ``wait`` takes: those there,
        or the first to come (a long poll returns once one is there)."""
        messages = self.messages
        if self.waiting >= len(messages) or messages[self.waiting] > at_sqs + wait:
            return []
        visible_at = max(at_sqs, messages[self.waiting])
        taken: list[float] = []
        while (
            self.waiting < len(messages)
            and messages[self.waiting] <= visible_at
            and len(taken) < RECEIVE_BATCH
        ):
            taken.append(messages[self.waiting])
            self.waiting += 1
        return taken


# ---------------------------------------------------------------------------------------------------
# The bill.
@dataclass(frozen=True)
class Bill:
    """A month of one configuration under one pattern."""

    config: Configuration
    pattern: Pattern
    p50: float
    p99: float
    gb_seconds: float  # billed execution GB-s (Premium: none, its instance is billed by the hour)
    baseline_gb_seconds: float  # Flex always ready: the instance's memory, every second
    executions: float
    sqs_requests: float
    compute_usd: float
    executions_usd: float
    sqs_usd: float
    # Bursts: the p99 of the messages sent after their burst's first message reached the handler.
    p99_after_first_pickup: float | None = None

    @property
    def usd(self) -> float:
        return self.compute_usd + self.executions_usd + self.sqs_usd


def percentile(values: list[float], share: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else math.nan


def flex_billed_seconds(seconds: float) -> float:
    """Flex Consumption: at least 1 s per execution, then rounded up to 100 ms."""
    return max(1.0, math.ceil(round(seconds * 10, 6)) / 10)


def consumption_billed_seconds(seconds: float) -> float:
    """Consumption: at least 100 ms per execution, rounded up to the millisecond."""
    return max(0.1, math.ceil(round(seconds * 1000, 6)) / 1000)


def billed(
    config: Configuration,
    pattern: Pattern,
    *,
    passes: list[float],
    seconds: float,
    latencies: list[float],
    requests: int,
    fifo: bool = False,
    after_first_pickup: list[float] | None = None,
) -> Bill:
    """A month of what ``passes`` (each pass's length) and ``requests`` over ``seconds`` of a run bill."""
    month = SECONDS_PER_MONTH / seconds
    executions = len(passes) * month
    sqs_requests = requests * month
    sqs_price = SQS_FIFO_REQUESTS if fifo else SQS_STANDARD_REQUESTS
    gb_seconds = baseline = compute = execution_cost = 0.0
    if config.plan == "flex_consumption":
        gb = config.instance_memory_mb / 1024
        gb_seconds = gb * sum(flex_billed_seconds(d) for d in passes) * month
        if config.always_ready:
            baseline = config.always_ready * gb * SECONDS_PER_MONTH
            compute = baseline * FLEX_ALWAYS_READY_BASELINE.usd + gb_seconds * FLEX_ALWAYS_READY_GB_SECOND.usd
            execution_cost = executions / 1e6 * FLEX_ALWAYS_READY_EXECUTIONS.usd
        else:
            compute = gb_seconds * FLEX_ON_DEMAND_GB_SECOND.usd
            execution_cost = executions / 1e6 * FLEX_ON_DEMAND_EXECUTIONS.usd
    elif config.plan == "consumption":
        gb = math.ceil(CONSUMPTION_MEMORY_USED_MB / 128) * 128 / 1024
        gb_seconds = gb * sum(consumption_billed_seconds(d) for d in passes) * month
        compute = gb_seconds * CONSUMPTION_GB_SECOND.usd
        execution_cost = executions / 1e6 * CONSUMPTION_EXECUTIONS.usd
    else:
        compute = HOURS_PER_MONTH * PREMIUM_EP1_HOUR.usd
    return Bill(
        config=config,
        pattern=pattern,
        p50=percentile(latencies, 0.5),
        p99=percentile(latencies, 0.99),
        gb_seconds=gb_seconds,
        baseline_gb_seconds=baseline,
        executions=executions,
        sqs_requests=sqs_requests,
        compute_usd=compute,
        executions_usd=execution_cost,
        sqs_usd=sqs_requests / 1e6 * sqs_price.usd,
        p99_after_first_pickup=percentile(after_first_pickup, 0.99) if after_first_pickup else None,
    )


def after_first_pickup(pattern: Pattern, arrivals: list[float], latencies: list[float]) -> list[float]:
    """Bursts: the waits of the messages sent after their burst's first message reached the handler."""
    if pattern.name != "bursts":
        return []
    cycle = pattern.burst_seconds + pattern.silence_seconds
    first_handled: dict[int, float] = {}
    kept: list[float] = []
    for index, waited in enumerate(latencies):  # in the order sent; the last may not have arrived
        sent = arrivals[index]
        burst = int(sent // cycle)
        if burst not in first_handled:
            first_handled[burst] = sent + waited
        elif sent > first_handled[burst]:
            kept.append(waited)
    return kept


def quiet_probes(config: Configuration) -> tuple[list[float], float]:
    """Single messages on a quiet queue, one at each of 100 evenly spread moments of a period, each
    after a quiet spell; and how long that takes."""
    period = config.period_seconds
    spacing = (math.ceil((config.quiet_spell_seconds + LONGEST_POLL_SECONDS) / period) + 3) * period
    probes = [n * spacing + (n + 0.5) / 100 * period for n in range(100)]
    return probes, probes[-1] + spacing


@functools.lru_cache(maxsize=512)
def bill(
    config: Configuration,
    pattern: Pattern,
    *,
    rtt: float = DEFAULT_RTT_SECONDS,
    fifo: bool = False,
    hours: float = 4.0,
) -> Bill:
    """The month of ``config`` under ``pattern``, simulated over ``hours`` (idle: a quiet queue)."""
    if pattern.name == "idle":
        probes, span = quiet_probes(config)
        waits = simulate(config, probes, span, rtt=rtt).latencies
        quiet = max(600.0, 20.0 * config.period_seconds)
        run = simulate(config, [], quiet, rtt=rtt)
        return billed(
            config,
            pattern,
            passes=run.passes,
            seconds=run.seconds,
            latencies=waits,
            requests=run.requests,
            fifo=fifo,
        )
    seconds = hours * 3_600
    run = simulate(config, pattern.arrivals(seconds, config.period_seconds), seconds, rtt=rtt)
    return billed(
        config,
        pattern,
        passes=run.passes,
        seconds=run.seconds,
        latencies=run.latencies,
        requests=run.requests,
        fifo=fifo,
        after_first_pickup=after_first_pickup(pattern, run.arrivals, run.latencies),
    )


def promised_p99(config: Configuration) -> float:
    """The p99 a configuration promises a message on a quiet queue: a tick's period (a message that
    comes just after a pass waits for the next), or a second when polling continuously. Never less
    than the simulated one (``bill(config, IDLE).p99``): the margin covers a round trip of 160 ms
    rather than 80, and a host slower to start a pass than the simulation assumes."""
    return FASTEST_PROMISE_SECONDS if config.continuous else float(config.period_seconds)


# ---------------------------------------------------------------------------------------------------
# The rule.
def candidates(plan: str, instance_memory_mb: int = DEFAULT_INSTANCE_MEMORY_MB) -> list[Configuration]:
    """Every configuration the rule weighs on ``plan``: each tick period, and continuous polling; on
    Flex, each with and without an always-ready instance for the timer."""
    shapes = [Configuration(plan, period_seconds=p) for p in TICK_PERIODS]
    shapes.append(Configuration(plan, period_seconds=CONTINUOUS_PERIOD, continuous=True))
    if plan != "flex_consumption":
        return shapes
    return [
        replace(shape, instance_memory_mb=instance_memory_mb, always_ready=ready)
        for shape in shapes
        for ready in (0, 1)
    ]


def parse_answers(plan: str, delivery_latency: object, instance_memory_mb: object) -> tuple[float, int]:
    """The answers as numbers; ``Refused`` names the field and why."""
    if plan not in PLANS:
        raise Refused("hosting_plan", f"{plan!r} must be one of {', '.join(PLANS)}")
    # Plain decimals only: the answers are written into files as typed (float() would take " 60\n").
    text = str(delivery_latency)
    latency = float(text) if DECIMAL.fullmatch(text) else math.nan
    if not math.isfinite(latency) or latency <= 0:
        raise Refused(
            "delivery_latency",
            f"{text!r} must be a number of seconds: the p99 wait you want for a message on a quiet "
            f"queue (60: a tick a minute, the cheapest; 1: polling continuously)",
        )
    memory_text = str(instance_memory_mb)
    memory = int(memory_text) if DECIMAL.fullmatch(memory_text) and "." not in memory_text else 0
    if memory not in INSTANCE_MEMORY_MB:
        raise Refused(
            "instance_memory_mb",
            f"{memory_text!r} must be one of {', '.join(map(str, INSTANCE_MEMORY_MB))} (MB per instance)",
        )
    if plan != "flex_consumption" and memory != DEFAULT_INSTANCE_MEMORY_MB:
        sizes = {"premium": "EP1, 3.5 GB", "consumption": "up to 1.5 GB, billed as used"}
        raise Refused(
            "instance_memory_mb",
            f"only Flex Consumption lets you size its instances; {plan} runs {sizes[plan]}: "
            f"leave it at {DEFAULT_INSTANCE_MEMORY_MB}",
        )
    return latency, memory


def derive(
    plan: str,
    delivery_latency: object,
    instance_memory_mb: object = DEFAULT_INSTANCE_MEMORY_MB,
    *,
    rtt: float = DEFAULT_RTT_SECONDS,
) -> Configuration:
    """The cheapest configuration of ``plan`` whose quiet-queue p99 meets ``delivery_latency``."""
    latency, memory = parse_answers(plan, delivery_latency, instance_memory_mb)
    weighed = candidates(plan, memory)
    meeting = [config for config in weighed if promised_p99(config) <= latency]
    if not meeting:
        nearest = min(promised_p99(config) for config in weighed)
        raise Refused(
            "delivery_latency",
            f"{latency:g} s is faster than any configuration of {plan} delivers: a message on a quiet queue "
            f"waits a round trip to AWS, up to 160 ms between continents, the handler's start and any "
            f"hand-over from one pass to the next, so the app promises {FASTEST_PROMISE_SECONDS:g} s at "
            f"best, polling continuously. The nearest answer that works is {nearest:g}",
        )
    return min(meeting, key=lambda config: rank(config, rtt))


def rank(config: Configuration, rtt: float) -> tuple[float, bool, int]:
    """Cheapest on a quiet queue first; at a tie, tick polling, then the longer period."""
    return (round(bill(config, IDLE, rtt=rtt).usd, 6), config.continuous, -config.period_seconds)


# ---------------------------------------------------------------------------------------------------
# The bill, printed (the costs command, the README, the benchmark).
def weighed_against(chosen: Configuration, delivery_latency: float) -> list[Configuration]:
    """``chosen`` and what a reader weighs it against: busy stays fast on it, the one-minute tick,
    continuous polling and, on Flex, the other side of the always-ready choice."""
    plan, memory = chosen.plan, chosen.instance_memory_mb
    base = Configuration(
        plan, instance_memory_mb=memory if plan == "flex_consumption" else DEFAULT_INSTANCE_MEMORY_MB
    )
    shown = [chosen]
    if not chosen.continuous:
        shown.append(replace(chosen, poll_while_busy=True))
    if plan == "flex_consumption":
        shown.append(replace(chosen, always_ready=1 - chosen.always_ready))
    shown.append(base)
    shown.append(replace(base, continuous=True))
    if plan == "flex_consumption":
        shown.append(replace(base, continuous=True, always_ready=1))
    unique: list[Configuration] = []
    for config in shown:
        if config not in unique:
            unique.append(config)
    return unique


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _p99(bill: Bill) -> str:
    text = f"{bill.p99:.2f}"
    if bill.p99_after_first_pickup is not None:
        text += f" ({bill.p99_after_first_pickup:.2f} after the first pickup)"
    return text


def bill_rows(bills: list[Bill], *, delivery_latency: float | None = None) -> list[str]:
    """A markdown table: one row per configuration and pattern. With ``delivery_latency``, a column
    says whether each configuration meets it (its promised quiet-queue p99)."""
    by_config = delivery_latency is not None
    head = "| configuration | meets it |" if by_config else "|"
    rule = "|---|---|" if by_config else "|"
    lines = [
        head
        + " traffic | p50 (s) | p99 (s) | GB-s a month | executions a month | SQS requests a month"
        + " | USD a month |",
        rule + "---|---:|---:|---:|---:|---:|---:|",
    ]
    for bill in bills:
        config = bill.config
        start = "|"
        if by_config:
            meets = (
                "yes" if delivery_latency is not None and promised_p99(config) <= delivery_latency else "no"
            )
            start = f"| {config.label} | {meets} (p99 promise {promised_p99(config):g} s) |"
        gb_seconds = _count(bill.gb_seconds) if config.plan != "premium" else "by the hour"
        lines.append(
            f"{start} {bill.pattern.title} | {bill.p50:.2f} | {_p99(bill)} | {gb_seconds}"
            f" | {_count(bill.executions)}"
            f" | {_count(bill.sqs_requests)} | ${bill.usd:,.2f} |"
        )
    return lines


def month_of(config: Configuration, *, rtt: float = DEFAULT_RTT_SECONDS, fifo: bool = False) -> list[Bill]:
    """``config``'s month in each pattern."""
    return [bill(config, pattern, rtt=rtt, fifo=fifo) for pattern in PATTERNS]


PLAN_PRICES = {
    "flex_consumption": (
        FLEX_ON_DEMAND_GB_SECOND,
        FLEX_ON_DEMAND_EXECUTIONS,
        FLEX_ALWAYS_READY_BASELINE,
        FLEX_ALWAYS_READY_GB_SECOND,
        FLEX_ALWAYS_READY_EXECUTIONS,
    ),
    "premium": (PREMIUM_EP1_HOUR,),
    "consumption": (CONSUMPTION_GB_SECOND, CONSUMPTION_EXECUTIONS),
}


def price_lines(plan: str) -> list[str]:
    """The prices a bill of ``plan`` uses, then their sources, each once."""
    used = (*PLAN_PRICES[plan], SQS_STANDARD_REQUESTS, SQS_FIFO_REQUESTS)
    lines = [f"Prices used (USD, pay as you go, East US, read {PRICES_READ}):"]
    lines.extend(
        f"- {price.meter}: ${price.usd:.7f}".rstrip("0").rstrip(".") + f" per {price.unit}" for price in used
    )
    lines.append(f"Free grants, {FREE_GRANTS}.")
    lines.append("Sources:")
    lines.extend(f"- {source}" for source in dict.fromkeys(price.source for price in used))
    return lines
