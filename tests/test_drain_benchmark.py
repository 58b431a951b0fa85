"""The generated drain benchmark runs and prints its figures (it is a script, not a test of speed)."""

from __future__ import annotations

import re
import sys

from .conftest import Baked, clean_env, run


def test_the_drain_benchmark_runs_on_its_own_emulator_and_prints_every_figure(baked_defaults: Baked) -> None:
    args = [
        sys.executable,
        "-m",
        "benchmarks.drain_benchmark",
        "--messages",
        "20",
        "--sequential-messages",
        "10",
    ]
    result = run(args, baked_defaults.path, clean_env())
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for figure in (
        "drain vs sequential loop:",
        "drain requests per message:",
        "no-op drain vs the raw ceiling:",
    ):
        assert re.search(rf"^- {figure} \d", out, re.MULTILINE), figure
    assert "moto server started by this script" in out
