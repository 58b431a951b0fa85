"""Trim the generated app to the chosen options, record the answers, print next steps.

Runs inside the generated project directory. Answers are read through ``tojson``
(see pre_gen_project.py for why that is injection-safe).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Keys that describe the machine that generated the app, not the app.
MACHINE_LOCAL_KEYS = ("_output_dir", "_repo_dir")


def unchosen_paths(answers: Mapping[str, Any]) -> list[Path]:
    """Paths, relative to the project root, that the answers leave out."""
    package = Path(str(answers["package_name"]))
    paths: list[Path] = []
    if answers["include_localstack"] != "yes":
        paths += [Path("localstack"), Path("tests") / "test_localstack.py"]
    if answers["ci"] != "github":
        paths.append(Path(".github"))
        paths += [
            Path("deploy") / "github_environment.py",
            Path("tests") / "test_deploy_github_environment.py",
        ]
    if answers["aws_auth"] != "oidc_managed_identity":
        paths.append(package / "engine" / "oidc_credentials.py")
        paths.append(Path("tests") / "oidc")
    else:
        # tests/oidc/ has the AWS step's test with the identity, in place of the default chain's.
        paths.append(Path("tests") / "test_deploy_aws_stack.py")
    return paths


# The template ships one hash-locked requirements.txt per offered Python (the dependencies differ:
# azure-functions 2.x needs 3.13), compiled from requirements.in; a bake keeps its version's lock.
LOCKS = Path("requirements")


def keep_lock(project_dir: Path, python_version: str) -> None:
    """requirements/pyXY.txt for ``python_version`` becomes requirements.txt; the other locks go."""
    lock = project_dir / LOCKS / f"py{python_version.replace('.', '')}.txt"
    lock.replace(project_dir / "requirements.txt")
    shutil.rmtree(project_dir / LOCKS)


def remove(project_dir: Path, relative: list[Path]) -> None:
    for path in (project_dir / p for p in relative):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def write_settings_files(project_dir: Path, package: str) -> None:
    """local.settings.json and infra/azure/app-settings.json, made from the app's settings table."""
    path = project_dir / package / "engine" / "settings.py"
    spec = importlib.util.spec_from_file_location("_baked_settings", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        files: dict[str, str] = module.settings_files()
    finally:
        del sys.modules[spec.name]
    for relative, text in files.items():
        (project_dir / relative).write_text(text, encoding="utf-8")


def replay_answers(answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers in cookiecutter's replay format (usable with --replay-file)."""
    kept = {key: value for key, value in answers.items() if key not in MACHINE_LOCAL_KEYS}
    return {"cookiecutter": kept}


def smoke_command(python: str, package: str) -> str:
    """The first command, as the template README gives it for the default answers."""
    return (
        f"python{python} -m venv .venv && .venv/bin/pip install -q -r requirements-dev.txt"
        f" && .venv/bin/python -m {package} smoke"
    )


def uv_smoke_command(python: str, package: str) -> str:
    """The first command with uv, which finds Python ``python`` or fetches it (the template README's)."""
    return (
        f"uv venv --seed --python {python} .venv && .venv/bin/pip install -q -r requirements-dev.txt"
        f" && .venv/bin/python -m {package} smoke"
    )


def python_runs(python: str) -> str | None:
    """Why ``python<version>`` cannot make the venv here, or None when it can. A pyenv shim of a version
    that is installed but not selected is on PATH, yet does not run."""
    found = shutil.which(f"python{python}")
    if found is None:
        return f"python{python} is not on PATH"
    try:
        probe = [found, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        result = subprocess.run(probe, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"python{python} ({found}) does not run: {error}"
    if result.returncode != 0 or result.stdout.strip() != python:
        said = (result.stderr or result.stdout).strip().splitlines()
        return f"python{python} ({found}) does not run: {said[0] if said else result.returncode}"
    return None


def interpreter_help(answers: Mapping[str, Any], why: str) -> str:
    """How to get the bake's Python when it is missing, with the first command for each way."""
    slug, package, python = answers["project_slug"], answers["package_name"], answers["python_version"]
    venv_smoke = f"cd {slug} && {smoke_command(python, package)}"
    return f"""
Python {python} is needed, and {why}. Get it one of these ways, then run the command under it:
  uv (https://docs.astral.sh/uv/):   uv python install {python}
    cd {slug} && {uv_smoke_command(python, package)}
  pyenv:   pyenv install --skip-existing {python}
    cd {slug} && pyenv local {python} && {smoke_command(python, package)}
  your OS's packages: sudo apt install python{python} python{python}-venv (Debian or Ubuntu, where offered;
  Ubuntu: the deadsnakes PPA), sudo dnf install python{python} (Fedora), brew install python@{python} (macOS)
    {venv_smoke}
"""


def next_steps(answers: Mapping[str, Any]) -> str:
    slug = answers["project_slug"]
    package = answers["package_name"]
    python = answers["python_version"]
    return f"""
Generated {answers["project_name"]} in ./{slug}

Next steps (the venv needs Python {python}, whatever `python3` is here):
  cd {slug} && {smoke_command(python, package)}
  .venv/bin/python -m pytest -m "not slow"   # the fast tests; all of them: .venv/bin/python -m pytest -n auto
  .venv/bin/python -m {package} --help        # ops commands: drain, send, stats, redrive

Run under the Functions host: see README.md, "Run locally".
Deploy to Azure and AWS: `azd up` (README.md, "Deploy").
"""


def main() -> int:
    answers = json.loads(r'''{{ cookiecutter | tojson }}''')  # fmt: skip
    project_dir = Path.cwd()
    keep_lock(project_dir, str(answers["python_version"]))
    remove(project_dir, unchosen_paths(answers))
    write_settings_files(project_dir, str(answers["package_name"]))
    (project_dir / ".cookiecutter.json").write_text(
        json.dumps(replay_answers(answers), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(next_steps(answers))
    missing = python_runs(str(answers["python_version"]))
    if missing:
        print(interpreter_help(answers, missing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
