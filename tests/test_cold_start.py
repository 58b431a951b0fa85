"""Cold start: function_app's import pulls in no heavy library, and the benchmark script runs.

Times are not asserted (the machine is shared); benchmarks/cold_start.py prints them.
"""

from __future__ import annotations

import re
import sys

import pytest

from .conftest import Baked, clean_env, run

# The full run's (fresh interpreters, timed); `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow


def test_function_app_imports_no_heavy_library_and_the_benchmark_runs(baked: Baked) -> None:
    result = run([sys.executable, "benchmarks/cold_start.py", "--runs", "1"], baked.path, clean_env())
    assert result.returncode == 0, result.stderr
    [bare] = [line for line in result.stdout.splitlines() if line.startswith("bare func init ")]
    [app] = [line for line in result.stdout.splitlines() if line.startswith("this app ")]
    assert bare.endswith("heavy modules loaded: none"), bare
    assert app.endswith("heavy modules loaded: none"), app
    assert "functions 4 " in app  # the timer, the token trigger, the two HTTP sends
    assert re.search(r"^import: this app / bare app = \d+\.\d\d$", result.stdout, re.MULTILINE)
    paired = r"^import, paired: median of this app / bare app in each pair = \d+\.\d\d$"
    assert re.search(paired, result.stdout, re.MULTILINE)
