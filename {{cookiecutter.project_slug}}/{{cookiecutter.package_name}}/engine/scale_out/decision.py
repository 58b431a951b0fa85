"""How many extra drain passes a backlog needs: a pure function of what one pass measured."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FanOutDecision:
    backlog: int
    rate_per_second: float
    passes_needed: int
    tokens: int

    def as_log_fields(self) -> dict[str, float | int]:
        return {
            "backlog": self.backlog,
            "rate_per_second": round(self.rate_per_second, 2),
            "passes_needed": self.passes_needed,
            "tokens": self.tokens,
        }


def decide_fan_out(
    *, backlog: int, rate_per_second: float, budget_seconds: float, max_workers: int
) -> FanOutDecision:
    """K = ceil(backlog / (rate x budget)) passes clear the backlog within one budget.

    The pass that measured the rate is one of them, so it asks for K - 1 more, at most
    ``max_workers``. No rate yet (nothing handled) means no decision: callers wait for one.
    """
    if max_workers <= 0 or backlog <= 0 or rate_per_second <= 0 or budget_seconds <= 0:
        return FanOutDecision(backlog, rate_per_second, 1 if backlog > 0 else 0, 0)
    passes_needed = math.ceil(backlog / (rate_per_second * budget_seconds))
    return FanOutDecision(backlog, rate_per_second, passes_needed, min(passes_needed - 1, max_workers))
