"""The template's scale model (benchmarks/) drives a baked app's fan-out code and prints its tables.

It is a simulation: no figure is asserted, only that every scenario prints a row per cap.
"""

from __future__ import annotations

import re
import sys

import pytest

from .conftest import TEMPLATE_DIR, clean_env, run

# The full run's (a simulation); `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

SCENARIOS = ("Burst:", "Step:", "Step during a burst:", "Daily wave:")


def test_the_scale_model_prints_each_scenario_for_each_cap_next_to_lambda() -> None:
    result = run([sys.executable, "-m", "benchmarks.scale_model"], TEMPLATE_DIR, clean_env())
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    print(out)
    assert "target lag 60 s (SQS_SCALE_OUT_TARGET_LAG_SECONDS)" in out  # the bake's default
    assert "cold start" in out and "msg/s" in out
    time = r"(\d+ h \d+ min|\d+ min \d+ s|not cleared)"
    n = r"[\d,.]+"
    # | cap | cleared | depth | drains | instance-hours | GB-s | fastest law: cleared | depth
    # | Lambda: cleared | depth | batches | GB-s |
    row = (
        rf"\| {{cap}} \| {time} \| {n} \| \d+ \| {n} \| {n} \| {time} \| {n}"
        rf" \| {time} \| {n} \| \d+ \| {n} \|"
    )
    for scenario in SCENARIOS:
        assert scenario in out
        table = out.split(scenario, 1)[1].split("\n\n", 2)[1]
        for cap in (1, 10, 100):
            assert re.search(row.format(cap=cap), table), f"no row for {cap} in {scenario}:\n{table}"
