"""The template's scale model (benchmarks/, not in apps) runs and prints its tables (a simulation)."""

from __future__ import annotations

import re
import sys

from .conftest import TEMPLATE_DIR, clean_env, run


def test_the_scale_model_prints_time_to_clear_a_burst_for_each_cap_next_to_lambda() -> None:
    result = run([sys.executable, "-m", "benchmarks.scale_model"], TEMPLATE_DIR, clean_env())
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Burst: 1,000,000 messages at once" in out
    time = r"(\d+ h \d+ min|\d+ min \d+ s)"
    for cap in (1, 10, 100):
        # | cap | this app's time | drains at peak | instance-hours | Lambda's time |
        row = rf"^\| {cap} \| {time} \| \d+ \| [\d.]+ \| {time} \|$"
        assert re.search(row, out, re.MULTILINE), f"no burst row for {cap}:\n{out}"
    assert "Step:" in out
    assert "Daily wave:" in out
