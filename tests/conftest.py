"""Baking the template: the option matrix, and helpers that run tools in a baked project."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
APP_TEMPLATE = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
COOKIECUTTER_JSON = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
BIN = Path(sys.executable).parent


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# One walker for every tree, the app's own (plain Python, no Jinja): what git keeps, never a venv or a cache.
kept_files = _load_module("project_files", APP_TEMPLATE / "tests" / "project_files.py").kept_files


@dataclass(frozen=True)
class Combination:
    name: str
    answers: dict[str, str] = field(default_factory=dict)
    run_app_tests: bool = False

    def answer(self, key: str) -> str:
        return self.answers.get(key, _default(key))


def _default(key: str) -> str:
    value = COOKIECUTTER_JSON[key]
    return value[0] if isinstance(value, list) else value


# Pairwise enough that every choice value appears at least once (test_matrix_covers_every_choice).
MATRIX = [
    Combination("defaults", {}, run_app_tests=True),
    Combination(
        "fifo-consumption-default-chain-py311",
        {
            "project_name": "Order Pipeline",
            "python_version": "3.11",
            "hosting_plan": "consumption",
            "aws_auth": "default_chain",
            "http_auth_level": "anonymous",
            "include_localstack": "no",
            "ci": "none",
            "input_queue_name": "orders.fifo",
            "output_queue_name": "shipments.fifo",
            "max_receive_count": "3",
            "delivery_latency": "10",
            "message_source": "sns",
        },
        run_app_tests=True,
    ),
    Combination(
        "premium-user-assigned-py312",
        {
            "python_version": "3.12",
            "hosting_plan": "premium",
            "aws_region": "eu-west-1",
            "aws_role_arn": "arn:aws:iam::123456789012:role/sqs-app",
            "azure_identity": "existing_user_assigned",
            "existing_identity_id": (
                "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/shared-identities"
                "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/sqs-app-identity"
            ),
            "managed_identity_client_id": "11111111-2222-3333-4444-555555555555",
            "token_audience": "api://my-app-id",
            "message_source": "s3",
            "max_message_bytes": "1048576",
            # GitHub: the workflow's Premium deploy path (publish_package) is baked and checked.
        },
    ),
    Combination(
        "py313-default-chain-localstack",
        {
            "python_version": "3.13",
            "aws_auth": "default_chain",
            "azure_identity": "system_assigned",
            "package_name": "queue_worker",
            # Continuous polling with an always-ready instance for the timer, on the smallest instances.
            "delivery_latency": "1",
            "instance_memory_mb": "512",
            "message_source": "eventbridge",
        },
    ),
]


# Generated, though the app's .gitignore keeps it out of git (func init's rule): the local settings.
GENERATED_BUT_IGNORED = ("local.settings.json",)


def generated_files(app: Path) -> list[Path]:
    """The files a bake generates: what git keeps of the app, and the local settings."""
    ignored = [app.resolve() / name for name in GENERATED_BUT_IGNORED]
    return sorted({*kept_files(app), *(path for path in ignored if path.is_file())})


@dataclass(frozen=True)
class Baked:
    combination: Combination
    path: Path
    context: dict[str, Any]

    @property
    def package(self) -> str:
        return str(self.context["package_name"])

    def docs(self) -> str:
        """The README and every page of docs/: what an owner reads."""
        pages = [self.path / "README.md", *sorted((self.path / "docs").glob("*.md"))]
        return "\n".join(page.read_text(encoding="utf-8") for page in pages)

    def files(self, under: str = "") -> list[Path]:
        """The generated files (under a folder of the app), not what tools and tests later write into the
        shared bake (venvs, caches, packages)."""
        folder = self.path.resolve() / under
        return [p for p in generated_files(self.path) if folder in p.parents]


def bake(tmp_path: Path, answers: dict[str, str]) -> Path:
    """A fresh bake of ``answers`` into ``tmp_path / "out"`` (the output folder), with cookiecutter's
    config and replay kept in ``tmp_path``."""
    config = tmp_path / "cookiecutter-config.yaml"
    config.write_text(
        f"cookiecutters_dir: {tmp_path / 'cc'}\nreplay_dir: {tmp_path / 'replay'}\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    out.mkdir()
    cookiecutter(
        str(TEMPLATE_DIR), no_input=True, extra_context=answers, output_dir=str(out), config_file=str(config)
    )
    return out


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600)


def clean_env() -> dict[str, str]:
    """The environment without AWS or app settings that could leak into a baked app's tests."""
    prefixes = ("AWS_", "SQS_", "AZURE_", "IDENTITY_", "MSI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def lint_env(baked: Baked) -> dict[str, str]:
    """``clean_env`` for the linters, with mypy's cache kept under the template's .cache/ (one per bake and
    xdist worker): a rerun of the fast loop rechecks what changed, by content hash, not every module and
    stub again (a cold mypy --strict of a bake takes half a minute)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    cache = TEMPLATE_DIR / ".cache" / "mypy" / f"{baked.combination.name}-{worker}"
    return {**clean_env(), "MYPY_CACHE_DIR": str(cache)}


def find_python(version: str) -> str | None:
    """An interpreter of ``version`` (e.g. "3.13"): ``pythonX.Y`` on PATH, else pyenv's newest patch."""
    candidates = [shutil.which(f"python{version}")]
    pyenv_versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    patches = sorted(
        pyenv_versions.glob(f"{version}.*/bin/python{version}"),
        key=lambda p: [int(n) if n.isdigit() else -1 for n in p.parts[-3].split(".")],
        reverse=True,
    )
    candidates += [str(p) for p in patches]
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    for candidate in filter(None, candidates):
        # A pyenv shim exists for every installed version but runs only the selected ones.
        result = subprocess.run([candidate, "-c", probe], capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip() == version:
            return candidate
    return None


def python_or_skip(version: str, why: str) -> str:
    """``find_python``, or a skip with the reason: on a developer's machine only. CI (``CI`` set)
    has pyenv's interpreters, so there a missing one fails instead of passing quietly."""
    python = find_python(version)
    if python is None:
        message = f"no Python {version} interpreter (PATH or pyenv): {why}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


_BAKED: dict[str, Baked] = {}


def _bake(cookies_session: Any, combination: Combination) -> Baked:
    """Bake once per combination and session (per xdist worker)."""
    if combination.name not in _BAKED:
        result = cookies_session.bake(extra_context=combination.answers)
        assert result.exception is None, result.exception
        assert result.exit_code == 0
        _BAKED[combination.name] = Baked(combination, Path(result.project_path), result.context)
    return _BAKED[combination.name]


def combinations(matrix: list[Combination]) -> list[Any]:
    """Fixture parameters: the default answers in the fast loop, every other combination in the full run."""
    return [pytest.param(c, id=c.name, marks=() if c is MATRIX[0] else pytest.mark.slow) for c in matrix]


@pytest.fixture(scope="session", params=combinations(MATRIX))
def baked(request: pytest.FixtureRequest, cookies_session: Any) -> Baked:
    return _bake(cookies_session, request.param)


APP_TEST_MATRIX = [c for c in MATRIX if c.run_app_tests]


@pytest.fixture(scope="session", params=combinations(APP_TEST_MATRIX))
def baked_with_app_tests(request: pytest.FixtureRequest, cookies_session: Any) -> Baked:
    return _bake(cookies_session, request.param)


OIDC_MATRIX = [c for c in MATRIX if c.answer("aws_auth") == "oidc_managed_identity"]


@pytest.fixture(scope="session", params=combinations(OIDC_MATRIX))
def baked_oidc(request: pytest.FixtureRequest, cookies_session: Any) -> Baked:
    return _bake(cookies_session, request.param)


@pytest.fixture(scope="session")
def baked_defaults(cookies_session: Any) -> Baked:
    """The app every default answer gives (what the README's commands produce)."""
    return _bake(cookies_session, MATRIX[0])


def load_hook(name: str) -> ModuleType:
    """A hook as a module, unrendered: its Jinja sits in a string that only main() parses."""
    return _load_module(name, TEMPLATE_DIR / "hooks" / f"{name}.py")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Figures the tests measured (record_property("figure", ...)), shown after the run."""
    figures = {
        value
        for report in terminalreporter.stats.get("passed", [])
        for key, value in getattr(report, "user_properties", [])
        if key == "figure"
    }
    if figures:
        terminalreporter.section("figures")
        for figure in sorted(figures):
            terminalreporter.write_line(figure)
