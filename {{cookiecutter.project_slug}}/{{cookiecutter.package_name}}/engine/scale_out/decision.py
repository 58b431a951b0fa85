"""How many drains a backlog needs, and how many tokens top them up: pure functions.

The law aims at a lag, as Azure's target-based scaling and KEDA's ``aws-sqs-queue`` scaler do,
not at one drain budget::

    drains wanted = ceil((backlog / target lag + arrival rate) / one drain's rate)

enough drains to clear the backlog within the target lag while keeping up with what arrives,
at least one (the tick's own pass) and at most the cap plus that one. A backlog at or under the
activation threshold asks for no help of its own: only arrivals faster than one drain do.

The scale model (the template's ``benchmarks/scale_model.py``) drives these same functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Reading:
    """The backlog at a moment, and the messages all drains had handled by then."""

    at_seconds: float
    backlog: int
    handled: float


def arrival_rate(previous: Reading | None, current: Reading) -> float | None:
    """Messages a second that arrived between two readings: the backlog's growth plus what was handled.

    None until there are two readings some time apart: the first sample has no rate yet.
    """
    if previous is None or current.at_seconds <= previous.at_seconds:
        return None
    arrived = current.backlog - previous.backlog + current.handled - previous.handled
    return max(0.0, arrived / (current.at_seconds - previous.at_seconds))


def drains_wanted(
    *,
    backlog: int,
    rate_per_drain: float,
    arrivals_per_second: float | None,
    target_lag_seconds: float,
    activation_backlog: int,
    max_workers: int,
) -> int:
    """Drains (the tick's pass included) that clear ``backlog`` within the lag and keep up with arrivals.

    Without a measured rate per drain there is nothing to size with: the tick's pass goes on alone.
    """
    if backlog <= 0 and not arrivals_per_second:
        return 0
    if max_workers <= 0 or rate_per_drain <= 0 or target_lag_seconds <= 0:
        return 1
    to_clear = backlog if backlog > activation_backlog else 0
    needed = (to_clear / target_lag_seconds + (arrivals_per_second or 0.0)) / rate_per_drain
    return max(1, min(math.ceil(needed), max_workers + 1))


def token_passes(tokens_in_queue: int, token_passes_running: int) -> int:
    """Token passes asked for and not yet over: the queue's count already holds a running pass's token.

    The host deletes a token only when its pass returns, and the queue's approximate count includes
    such invisible messages; a pass can outlive its token's time to live, so the larger count wins.
    """
    return max(tokens_in_queue, token_passes_running)


def tokens_to_put(*, drains: int, token_passes_outstanding: int, max_workers: int) -> int:
    """Tokens that top the token passes up to ``drains`` minus the tick's own, within the cap."""
    wanted_token_passes = min(max(drains - 1, 0), max(max_workers, 0))
    return max(0, wanted_token_passes - token_passes_outstanding)


@dataclass(frozen=True)
class ScaleDecision:
    backlog: int
    rate_per_drain: float
    arrivals_per_second: float | None
    drains: int
    token_passes_outstanding: int
    tokens: int

    def as_log_fields(self) -> dict[str, float | int | None]:
        arrivals = self.arrivals_per_second
        return {
            "backlog": self.backlog,
            "rate_per_drain": round(self.rate_per_drain, 2),
            "arrivals_per_second": None if arrivals is None else round(arrivals, 2),
            "drains_wanted": self.drains,
            "token_passes_outstanding": self.token_passes_outstanding,
            "tokens": self.tokens,
        }


def decide(
    *,
    backlog: int,
    rate_per_drain: float,
    arrivals_per_second: float | None,
    token_passes_outstanding: int,
    target_lag_seconds: float,
    activation_backlog: int,
    max_workers: int,
) -> ScaleDecision:
    """One sample's decision: the drains wanted, and the tokens that top the passes up to them."""
    drains = drains_wanted(
        backlog=backlog,
        rate_per_drain=rate_per_drain,
        arrivals_per_second=arrivals_per_second,
        target_lag_seconds=target_lag_seconds,
        activation_backlog=activation_backlog,
        max_workers=max_workers,
    )
    tokens = tokens_to_put(
        drains=drains, token_passes_outstanding=token_passes_outstanding, max_workers=max_workers
    )
    return ScaleDecision(
        backlog, rate_per_drain, arrivals_per_second, drains, token_passes_outstanding, tokens
    )
