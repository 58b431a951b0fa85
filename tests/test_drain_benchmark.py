"""The generated drain benchmark runs and prints its figures (it is a script, not a test of speed)."""

from __future__ import annotations

import re
import sys

from .conftest import Baked, clean_env, run


def test_the_drain_benchmark_runs_through_its_latency_proxy_and_prints_every_figure(
    baked_defaults: Baked,
) -> None:
    args = [
        sys.executable,
        "-m",
        "benchmarks.drain_benchmark",
        "--rtt-ms",
        "0,40",
        "--messages",
        "20",
        "--loop-messages",
        "10",
        "--lingers",
        "0",
    ]
    result = run(args, baked_defaults.path, clean_env())
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for rtt in ("0", "40"):
        for consumer in ("drain, 32 at once", "sequential loop", "receive 10 \\+ batch delete, no handler"):
            figures = r"(\d+) \| [\d,]+ \| [\d,]+ \| (\d+) \| (\d+) \| [\d.]+ \| [\d.]+"
            row = rf"^\| {rtt} \| {consumer} \| {figures} \|$"
            match = re.search(row, out, re.MULTILINE)
            assert match, (rtt, consumer, out)
            assert match.group(3) == "0", f"lost messages: {match.group(0)}"
        assert re.search(rf"^\| {rtt} \| \d+\.\d\d \| \d+ \|$", out, re.MULTILINE), f"idle tick at {rtt} ms"
    for figure in (
        "drain, 32 at once: deleted/s at 40 ms RTT is",
        "drain duplicates, all runs:",
        "drain requests per message when busy, worst:",
        "idle tick, worst:",
    ):
        assert re.search(rf"^- {re.escape(figure)} \d", out, re.MULTILINE), figure
    assert re.search(
        r"^\| every 60 s \| 0 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d,]+ \(\$[\d.,]+\) \|", out, re.MULTILINE
    )
    assert "moto server started by this script" in out
