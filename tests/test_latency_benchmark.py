"""The generated latency benchmark fires the app's real timer function as the host does, under each traffic
pattern and configuration, and prints latency and a month's bill beside the rule's simulation (it is a
script, not a test of speed: no figure is asserted)."""

from __future__ import annotations

import re
import sys

import pytest

from .conftest import Baked, clean_env, run

# The full run's (benchmarks); `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

PATTERNS = ("idle", "sparse", "bursts", "uniform")
CONFIGURATIONS = ("default", "busy", "continuous")


def test_the_latency_benchmark_prints_each_pattern_and_configuration(baked_defaults: Baked) -> None:
    args = [sys.executable, "-m", "benchmarks.latency_benchmark", "--period", "2", "--rtt-ms", "20"]
    # Small: two quiet-queue messages, two sparse (one counts), a compressed burst (4 s at 1/s), six uniform.
    args += ["--idle-ticks", "2", "--probes", "2", "--duration", "12", "--bursts", "1", "--messages", "6"]
    result = run(args, baked_defaults.path, clean_env())
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    dollars = r"\$[\d,.]+ / \$[\d,.]+ / \$[\d,.]+ / \$[\d,.]+"
    for pattern in PATTERNS:
        for configuration in CONFIGURATIONS:
            row = rf"^\| {pattern} \| {configuration} \| (\d+)/(\d+) \| (\d+) \| .+ \| {dollars} \|$"
            match = re.search(row, out, re.MULTILINE)
            assert match, (pattern, configuration, out)
            handled, sent, passes = map(int, match.groups())
            assert handled == sent > 0, f"a message was not handled: {match.group(0)}"
            assert passes >= 1
    assert "RTT 20 ms" in out
    assert "compressed by 30" in out
