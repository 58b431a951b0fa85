"""The drain benchmarks run and print their figures (they are scripts, not tests of speed): the app's own
(its drain across a round trip, the idle tick and its cost) and the template's simple-loop comparison."""

from __future__ import annotations

import re
import sys

import pytest

from .conftest import TEMPLATE_DIR, Baked, clean_env, run

# The full run's (benchmarks); `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

FIGURES = r"(\d+) \| [\d,]+ \| [\d,]+ \| (\d+) \| (\d+) \| [\d.]+ \| [\d.]+"


def assert_row(out: str, rtt: str, consumer: str) -> None:
    match = re.search(rf"^\| {rtt} \| {consumer} \| {FIGURES} \|$", out, re.MULTILINE)
    assert match, (rtt, consumer, out)
    assert match.group(3) == "0", f"lost messages: {match.group(0)}"


def test_the_apps_drain_benchmark_runs_through_its_latency_proxy_and_prints_every_figure(
    baked_defaults: Baked,
) -> None:
    args = ["--rtt-ms", "0,40", "--messages", "20", "--lingers", "0"]
    result = run(
        [sys.executable, "-m", "benchmarks.drain_benchmark", *args], baked_defaults.path, clean_env()
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for rtt in ("0", "40"):
        assert_row(out, rtt, "drain, 32 at once")
        assert re.search(rf"^\| {rtt} \| \d+\.\d\d \| \d+ \|$", out, re.MULTILINE), f"idle tick at {rtt} ms"
    assert "sequential loop" not in out  # the comparisons prove the template: they live in its benchmarks/
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


def test_the_apps_drain_benchmark_runs_the_owners_handler(baked_defaults: Baked) -> None:
    args = ["--handler", "app", "--rtt-ms", "0", "--messages", "10", "--lingers", "0"]
    result = run(
        [sys.executable, "-m", "benchmarks.drain_benchmark", *args], baked_defaults.path, clean_env()
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_row(result.stdout, "0", "drain, 32 at once")
    assert "handler the app's handle_message" in result.stdout


def test_the_templates_simple_loop_comparison_drives_the_baked_apps_drain(baked_defaults: Baked) -> None:
    args = [
        "--app",
        str(baked_defaults.path),
        "--rtt-ms",
        "0,40",
        "--messages",
        "20",
        "--loop-messages",
        "10",
    ]
    result = run([sys.executable, "-m", "benchmarks.simple_loops", *args], TEMPLATE_DIR, clean_env())
    assert result.returncode == 0, result.stderr[-3000:]
    for rtt in ("0", "40"):
        for consumer in ("drain, 32 at once", "sequential loop", "receive 10 \\+ batch delete, no handler"):
            assert_row(result.stdout, rtt, consumer)
    # The sequential loop pays a delete per message: more than one request a message, the drain about 0.2.
    loop = re.search(r"^\| 0 \| sequential loop \| 10 \|(?: [^|]+ \|){5} ([\d.]+) \|", result.stdout, re.M)
    assert loop and float(loop.group(1)) > 1.0, result.stdout
    assert "moto server started by this script" in result.stdout
