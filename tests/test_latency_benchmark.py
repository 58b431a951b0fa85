"""The generated latency benchmark runs the app's drain on a host-like schedule and prints its table (it
is a script, not a test of speed: no figure is asserted)."""

from __future__ import annotations

import re
import sys

import pytest

from .conftest import Baked, clean_env, run

# The full run's (benchmarks); `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

PLANS = (
    ("Flex Consumption, 2,048 MB \\(default\\)", "false"),
    ("Consumption, 256 MB used \\(default\\)", "false"),
    ("Premium EP1 \\(default\\)", "true"),
    ("Flex Consumption, 2,048 MB, polling continuously", "true"),
)


def test_the_latency_benchmark_prints_latency_and_billing_for_each_plans_defaults(
    baked_defaults: Baked,
) -> None:
    args = [
        sys.executable,
        "-m",
        "benchmarks.latency_benchmark",
        "--period",
        "2",
        "--duration",
        "5",
        "--messages",
        "6",
        "--rtt-ms",
        "20",
    ]
    result = run(args, baked_defaults.path, clean_env())
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for plan, continuous in PLANS:
        figures = r"(\d+) \| (\d+) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d,]+ \| .+"
        row = rf"^\| {plan} \| {continuous} \| every 2 s \| {figures} \|$"
        match = re.search(row, out, re.MULTILINE)
        assert match, (plan, out)
        messages, passes = map(int, match.groups())
        assert messages == 6, f"a message was not handled: {match.group(0)}"
        assert passes >= 1
    assert re.search(r"not handled: 0 \(cheap\), 0 \(continuous\)", out)
    assert "RTT 20 ms" in out
