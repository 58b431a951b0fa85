"""The generated app's fast inner loop: `pytest -m "not slow"`, and pre-commit's local hooks."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import yaml

from .conftest import Baked, clean_env, lint_env, run


def collected(baked: Baked, *marker: str) -> set[str]:
    result = run([sys.executable, "-m", "pytest", "--collect-only", "-q", *marker], baked.path, clean_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return {line for line in result.stdout.splitlines() if re.match(r"tests/\S+\.py::", line)}


def test_not_slow_is_a_real_subset_that_passes(baked_defaults: Baked) -> None:
    fast, everything = collected(baked_defaults, "-m", "not slow"), collected(baked_defaults)
    assert fast and fast < everything
    fast_modules = {test.split("::")[0] for test in fast}
    assert {"tests/test_message_model.py", "tests/test_settings.py"} <= fast_modules
    assert "tests/test_consumer.py" not in fast_modules

    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"]
    result = run(args, baked_defaults.path, clean_env())
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert f"{len(fast)} passed" in result.stdout


def test_the_pre_commit_hooks_run_the_venvs_tools_and_pass_on_a_fresh_bake(baked_defaults: Baked) -> None:
    config = yaml.safe_load((baked_defaults.path / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    (repo,) = config["repos"]
    assert repo["repo"] == "local"
    hooks = {hook["id"]: hook for hook in repo["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format", "mypy"}
    tools = Path(sys.executable).parent
    for hook in hooks.values():
        assert hook["language"] == "system"
        # What pre-commit runs: the entry, with the staged Python files unless pass_filenames is false.
        program, *args = shlex.split(hook["entry"])
        files = [] if hook.get("pass_filenames") is False else ["function_app.py", baked_defaults.package]
        result = run([str(tools / program), *args, *files], baked_defaults.path, lint_env(baked_defaults))
        assert result.returncode == 0, (hook["id"], result.stdout[-3000:] + result.stderr[-2000:])
