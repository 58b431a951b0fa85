"""The README's commands work (CI runs the test one), and the template's own code is clean."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from .conftest import BIN, TEMPLATE_DIR, Baked, clean_env, load_hook, python_or_skip, run

README = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")


def command_after(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.+?)\n```", README)
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


@pytest.mark.slow
def test_the_readme_smoke_command_works_where_python3_is_another_version(
    baked_defaults: Baked, tmp_path: Path
) -> None:
    """The README's command, verbatim, from a fresh clone whose `python3` is 3.11: a real venv of the
    named interpreter and a real install of the app's requirements-dev.txt (1 to 2 minutes, so marked
    slow; CI runs it, as `.ci/run` deselects nothing)."""
    version = baked_defaults.context["python_version"]
    bake_python = python_or_skip(version, "the README's smoke command names it")
    other_python = python_or_skip("3.11", "the `python3` that is not the bake's version")
    assert version != "3.11"
    # PATH holds only this folder and the system's: `python3` is 3.11, `python3.13` the bake's.
    path_bin = tmp_path / "bin"
    path_bin.mkdir()
    (path_bin / "python3").symlink_to(other_python)
    (path_bin / f"python{version}").symlink_to(bake_python)
    clone = tmp_path / "cookiecutter-azure-functions-sqs"
    clone.mkdir()
    shutil.copytree(baked_defaults.path, tmp_path / baked_defaults.path.name, ignore=IGNORED_IN_A_CLONE)
    env = {**clean_env(), "PATH": f"{path_bin}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    assert run(["python3", "--version"], clone, env).stdout.strip().startswith("Python 3.11")

    result = run(["bash", "-c", command_after("smoke-command")], clone, env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert SMOKE_SUMMARY in result.stdout
    venv_python = tmp_path / baked_defaults.path.name / ".venv" / "bin" / "python"
    assert run([str(venv_python), "--version"], clone, env).stdout.strip().startswith(f"Python {version}")


IGNORED_IN_A_CLONE = shutil.ignore_patterns(".venv", "__pycache__", ".*_cache")


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
