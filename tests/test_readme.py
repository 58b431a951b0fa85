"""The README's commands work (CI runs the test one), and the template's own code is clean."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from .conftest import BIN, MATRIX, TEMPLATE_DIR, Baked, clean_env, load_hook, run

README = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")


def command_after(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.+?)\n```", README, re.DOTALL)
    assert match, f"README has no {marker} block"
    return match.group(1)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci_lines = (TEMPLATE_DIR / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command_after("test-command") in ci_lines


def test_the_readme_generate_command_bakes_an_app(tmp_path: Path) -> None:
    venv, install, generate = (part.strip() for part in command_after("generate-command").split("&&"))
    # A venv, not the system's pip: Debian and Ubuntu refuse installs into their own Python.
    assert venv == "python3 -m venv .venv"
    assert install.startswith(".venv/bin/pip install") and "cookiecutter" in install
    args = shlex.split(generate)
    assert args[0] == ".venv/bin/cookiecutter"
    output = tmp_path / "apps"
    # This environment has cookiecutter: run the same command with it, into a temporary folder.
    args = [str(BIN / "cookiecutter"), *args[1:-1], str(output), "--no-input"]
    result = run(args, TEMPLATE_DIR, {**clean_env(), "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (output / "sqs-functions-app" / "function_app.py").exists()


def test_the_readme_smoke_command_runs_the_generated_app_flow(baked_defaults: Baked) -> None:
    cd, venv, install, smoke = (part.strip() for part in command_after("smoke-command").split("&&"))
    # The folder and the package are what the generate command gives with the default answers.
    assert cd == f"cd ../{baked_defaults.path.name}"
    # The bake's own Python by name: `python3` may be another version (3.11 on Debian 12).
    assert venv == f"python{baked_defaults.context['python_version']} -m venv .venv"
    assert install == ".venv/bin/pip install -q -r requirements-dev.txt"
    args = shlex.split(smoke)
    assert args == [".venv/bin/python", "-m", baked_defaults.package, "smoke"]

    # This environment has the app's dev requirements: run the same module with it, in the app.
    result = run([sys.executable, *args[1:]], baked_defaults.path, clean_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout
    assert SMOKE_SUMMARY in result.stdout


SMOKE_SUMMARY = ": 12 sent, 11 handled, 1 in the DLQ, 0 left."


def test_the_post_generation_message_gives_the_readme_smoke_command(baked_defaults: Baked) -> None:
    hook = load_hook("post_gen_project")
    message = hook.next_steps(baked_defaults.context)
    readme_command = command_after("smoke-command").replace("cd ../", "cd ", 1)
    assert readme_command in message
    # Where the interpreter is missing, the message gives the README's uv command among the ways to it.
    help_text = hook.interpreter_help(baked_defaults.context, "python3.13 is not on PATH")
    assert command_after("smoke-command-uv").replace("cd ../", "cd ", 1) in help_text
    assert readme_command in help_text


def test_the_readme_uv_command_is_the_venv_command_with_uv_making_the_venv() -> None:
    venv = command_after("smoke-command").split(" && ")
    uv = command_after("smoke-command-uv").split(" && ")
    assert uv[1] == "uv venv --seed --python 3.13 .venv"  # --seed: pip in the venv, as python -m venv
    assert [*uv[:1], *uv[2:]] == [*venv[:1], *venv[2:]]


def collected(*marker: str) -> set[str]:
    args = ["--collect-only", "-q", "-p", "no:cacheprovider", "-n", "0", *marker]
    result = run([sys.executable, "-m", "pytest", *args], TEMPLATE_DIR, clean_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return {line for line in result.stdout.splitlines() if line.startswith("tests/")}


def test_the_fast_loop_bakes_and_lints_the_default_app() -> None:
    assert command_after("fast-loop-command") == '.venv/bin/python -m pytest -m "not slow"'
    fast, everything = collected("-m", "not slow"), collected()
    assert fast < everything
    lints = "tests/test_bake_matrix.py::test_generated_code_passes_the_linters"
    must = {f"{lints}[defaults-{tool}]" for tool in ("ruff-check", "ruff-format", "mypy-strict")}
    must |= {
        "tests/test_bake_matrix.py::test_nothing_is_left_unrendered[defaults]",
        "tests/test_bake_matrix.py::test_function_app_indexes_into_the_four_functions[defaults]",
        "tests/test_inner_loop.py::test_not_slow_is_a_real_subset_that_passes",
    }
    assert must <= fast
    # One bake: the default answers; the other combinations are the full run's.
    others = [combination.name for combination in MATRIX[1:]]
    assert [test for test in fast if any(name in test for name in others)] == []


def test_the_template_code_itself_is_clean() -> None:
    code = ["hooks", "tests", "benchmarks"]
    for command in (["ruff", "check", *code], ["ruff", "format", "--check", *code]):
        result = run([str(Path(sys.executable).parent / command[0]), *command[1:]], TEMPLATE_DIR)
        assert result.returncode == 0, result.stdout + result.stderr


def test_no_template_file_is_hidden_from_git() -> None:
    # The generated app's .gitignore (func init's) ignores local.settings.json; the template's copy must ship.
    result = run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "{{cookiecutter.project_slug}}"],
        TEMPLATE_DIR,
    )
    assert result.returncode == 0, result.stderr
    hidden = [
        line for line in result.stdout.splitlines() if "__pycache__" not in line and "_cache" not in line
    ]
    assert hidden == []
