"""Day one, as a newcomer finds it (issue 24): the template README's commands verbatim, in a fresh copy of the
default app on a machine whose `python3` is another version; the app's own README then makes its venv inside
the app, and the app's fast subset passes there; every next step the post-generation message prints runs as
printed; uv makes the same venv; and where the bake's Python is missing, the message says how to get it.

The slow tests make real venvs and install the app's requirements from PyPI (minutes; CI runs them).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from .conftest import BIN, TEMPLATE_DIR, Baked, clean_env, generated_files, load_hook, python_or_skip, run
from .test_readme import SMOKE_SUMMARY, command_after

post_gen = load_hook("post_gen_project")


def fresh_copy(app: Path, to: Path) -> Path:
    """The generated files of a bake, nothing tools wrote there since: what a new user's bake holds."""
    for path in generated_files(app):
        target = to / path.relative_to(app.resolve())
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return to


def machine_path(root: Path, version: str) -> str:
    """A PATH whose `python3` is 3.11 (Debian 12's) and `python<version>` the bake's, and the system's."""
    bake_python = python_or_skip(version, "the README's smoke command names it")
    other_python = python_or_skip("3.11", "the `python3` that is not the bake's version")
    assert version != "3.11"
    path_bin = root / "bin"
    path_bin.mkdir()
    (path_bin / "python3").symlink_to(other_python)
    (path_bin / f"python{version}").symlink_to(bake_python)
    return f"{path_bin}{os.pathsep}/usr/bin{os.pathsep}/bin"


def venv_version(app: Path, env: dict[str, str]) -> str:
    """The X.Y of the venv inside ``app``."""
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    return run([str(app / ".venv" / "bin" / "python"), "-c", probe], app, env).stdout.strip()


def bash(script: str, cwd: Path, env: dict[str, str]) -> CompletedProcess[str]:
    return run(["bash", "-e", "-c", script], cwd, env)


@dataclass(frozen=True)
class Newcomer:
    root: Path  # the folder the template was cloned into: the clone and the app side by side
    app: Path
    env: dict[str, str]
    smoke: CompletedProcess[str]  # the template README's smoke command, which made the venv


@pytest.fixture(scope="module")
def newcomer(baked_defaults: Baked, tmp_path_factory: pytest.TempPathFactory) -> Newcomer:
    root = tmp_path_factory.mktemp("newcomer")
    env = {**clean_env(), "PATH": machine_path(root, baked_defaults.context["python_version"])}
    clone = root / "cookiecutter-azure-functions-sqs"
    clone.mkdir()
    app = fresh_copy(baked_defaults.path, root / baked_defaults.path.name)
    assert run(["python3", "--version"], clone, env).stdout.strip().startswith("Python 3.11")
    smoke = bash(command_after("smoke-command"), clone, env)
    return Newcomer(root, app, env, smoke)


# The tests of one newcomer share one venv: one xdist worker runs them.
ONE_NEWCOMER = pytest.mark.xdist_group("newcomer")


@pytest.mark.slow
@ONE_NEWCOMER
def test_the_readme_smoke_command_works_where_python3_is_another_version(
    newcomer: Newcomer, baked_defaults: Baked
) -> None:
    """A real venv of the named interpreter, inside the app, and a real install of requirements-dev.txt."""
    assert newcomer.smoke.returncode == 0, newcomer.smoke.stdout + newcomer.smoke.stderr
    assert SMOKE_SUMMARY in newcomer.smoke.stdout
    assert venv_version(newcomer.app, newcomer.env) == baked_defaults.context["python_version"]


def quick_start(app: Path) -> list[str]:
    """The app README's Quick start commands, a line each."""
    readme = (app / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.+?)\n```", section, re.DOTALL)
    assert block, "the Quick start has no bash block"
    return block.group(1).splitlines()


FAST_SUBSET = 'python -m pytest -m "not slow"'


@pytest.mark.slow
@ONE_NEWCOMER
def test_the_apps_fast_subset_passes_in_the_venv_its_readme_makes(
    newcomer: Newcomer, record_property: Any
) -> None:
    """The acceptance test of issue 24: the app's README, verbatim, in the app, whose venv is inside it.
    Its tests once walked the venv (13 failures, and about 100 s of the inner loop)."""
    assert newcomer.smoke.returncode == 0, "the venv was not made"
    lines = quick_start(newcomer.app)
    [fast] = [line for line in lines if line.startswith(FAST_SUBSET)]
    setup = lines[: lines.index(fast)]
    assert setup[0].startswith("python3.13 -m venv .venv && . .venv/bin/activate")

    made = bash("\n".join(setup), newcomer.app, newcomer.env)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    started = time.monotonic()
    tested = bash(f". .venv/bin/activate\n{fast}", newcomer.app, newcomer.env)
    seconds = time.monotonic() - started

    assert tested.returncode == 0, tested.stdout[-5000:] + tested.stderr[-2000:]
    summary = tested.stdout.strip().splitlines()[-1].strip("= ")
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    record_property("figure", f"app's fast subset, venv inside the app: {summary} ({seconds:.0f} s wall)")


@pytest.mark.slow
@ONE_NEWCOMER
def test_every_next_step_of_the_post_generation_message_runs_as_printed(
    newcomer: Newcomer, baked_defaults: Baked
) -> None:
    """In one shell, from where cookiecutter ran, as a user types them (the first one enters the app)."""
    message = post_gen.next_steps(baked_defaults.context)
    steps = [
        line.split("   # ", 1)[0].strip()
        for line in message.splitlines()
        if line.startswith("  ") and not line.lstrip().startswith("#")
    ]
    assert len(steps) == 3, steps
    assert steps[0].startswith(f"cd {baked_defaults.path.name} && ")

    result = bash("\n".join(steps), newcomer.root, newcomer.env)

    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert SMOKE_SUMMARY in result.stdout
    assert re.search(r"=+ \d+ passed, \d+ deselected in ", result.stdout), result.stdout[-3000:]
    assert f"usage: python -m {baked_defaults.package}" in result.stdout


@pytest.mark.slow
def test_the_readme_uv_command_makes_the_venv_and_runs_the_smoke(
    baked_defaults: Baked, tmp_path: Path
) -> None:
    """uv, verbatim, where `python3` is another version. Offline for Python: uv must find the named
    version (UV_PYTHON_DOWNLOADS=never), not fetch it, in this test."""
    uv = shutil.which("uv", path=str(BIN)) or shutil.which("uv")
    assert uv, "uv is a dev requirement of the template (requirements-dev.txt)"
    env = {
        **clean_env(),
        "PATH": machine_path(tmp_path, baked_defaults.context["python_version"]),
        "UV_PYTHON_DOWNLOADS": "never",
        # Where TLS goes through a proxy with its own authority (as on this machine), as pip does.
        "UV_SYSTEM_CERTS": "1",
    }
    (tmp_path / "bin" / "uv").symlink_to(uv)
    clone = tmp_path / "cookiecutter-azure-functions-sqs"
    clone.mkdir()
    app = fresh_copy(baked_defaults.path, tmp_path / baked_defaults.path.name)

    result = bash(command_after("smoke-command-uv"), clone, env)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert SMOKE_SUMMARY in result.stdout
    assert venv_version(app, env) == baked_defaults.context["python_version"]


@pytest.mark.slow
def test_the_pyenv_way_the_message_names_runs_as_printed(baked_defaults: Baked, tmp_path: Path) -> None:
    """Where pyenv has the version but another is selected (its shim of python3.13 does not run): the
    message's pyenv command, verbatim. Not run here: `pyenv install` (it builds Python from source) and the
    OS's package managers."""
    pyenv = shutil.which("pyenv") or str(Path.home() / ".pyenv" / "bin" / "pyenv")
    root = run([pyenv, "root"], tmp_path, clean_env()) if Path(pyenv).exists() else None
    if root is None or root.returncode != 0:
        pytest.skip("pyenv is not installed")
    pyenv_root = Path(root.stdout.strip())
    if not list((pyenv_root / "versions").glob("3.13.*")):
        pytest.skip("pyenv has no Python 3.13")
    env = {**clean_env(), "PATH": f"{Path(pyenv).parent}:{pyenv_root / 'shims'}:/usr/bin:/bin"}
    env.pop("PYENV_VERSION", None)
    app = fresh_copy(baked_defaults.path, tmp_path / baked_defaults.path.name)
    help_text = post_gen.interpreter_help(baked_defaults.context, "why")
    lines = help_text.splitlines()
    command = lines[lines.index("  pyenv:   pyenv install --skip-existing 3.13") + 1].strip()
    assert command.startswith(f"cd {app.name} && pyenv local 3.13 && python3.13 -m venv .venv")

    result = bash(command, tmp_path, env)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert SMOKE_SUMMARY in result.stdout
    assert venv_version(app, env) == "3.13"


def bake_on(path: str, tmp_path: Path) -> str:
    """The post-generation message of a default bake on the command line, with this PATH."""
    out = tmp_path / "out"
    out.mkdir()
    args = [str(BIN / "cookiecutter"), "--no-input", "-o", str(out), str(TEMPLATE_DIR)]
    result = run(args, tmp_path, {**clean_env(), "PATH": path, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_where_the_interpreter_is_missing_the_message_names_the_ways_to_it(tmp_path: Path) -> None:
    empty = tmp_path / "no-python-here"
    empty.mkdir()
    message = bake_on(str(empty), tmp_path)

    assert "Python 3.13 is needed, and python3.13 is not on PATH." in message
    ways = ("uv python install 3.13", "pyenv install --skip-existing 3.13", "sudo apt install python3.13")
    assert [way for way in ways if way not in message] == []
    # Each way with its first command; uv's is the README's.
    assert command_after("smoke-command-uv").replace("cd ../", "cd ", 1) in message
    assert "pyenv local 3.13 && python3.13 -m venv .venv" in message


def test_a_pyenv_shim_of_a_version_not_selected_does_not_count(tmp_path: Path) -> None:
    shim = tmp_path / "python3.13"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.13: command not found' >&2\nexit 127\n", "utf-8")
    shim.chmod(0o755)
    message = bake_on(f"{tmp_path}{os.pathsep}/usr/bin{os.pathsep}/bin", tmp_path)

    assert f"python3.13 ({shim}) does not run: pyenv: python3.13: command not found" in message
    assert "uv python install 3.13" in message


def test_where_the_interpreter_runs_the_message_says_nothing_of_it(tmp_path: Path) -> None:
    path_bin = tmp_path / "bin"
    path_bin.mkdir()
    (path_bin / "python3.13").symlink_to(python_or_skip("3.13", "the bake's Python, on PATH"))
    message = bake_on(str(path_bin), tmp_path)

    assert "python -m sqs_functions_app smoke" in message
    assert "is needed" not in message
