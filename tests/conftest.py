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

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
COOKIECUTTER_JSON = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
BIN = Path(sys.executable).parent


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
        },
    ),
]


# Folders that tests and tools write into a shared bake (caches, virtual environments, packages).
WRITTEN_LATER = {"__pycache__", ".venv", ".python_packages", ".azurite"}


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

    def files(self) -> list[Path]:
        """The generated files: not what tools and tests later write into the shared bake."""
        return [
            p
            for p in self.path.rglob("*")
            if p.is_file() and not any(part in WRITTEN_LATER or part.endswith("_cache") for part in p.parts)
        ]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600)


def clean_env() -> dict[str, str]:
    """The environment without AWS or app settings that could leak into a baked app's tests."""
    prefixes = ("AWS_", "SQS_", "AZURE_", "IDENTITY_", "MSI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


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


@pytest.fixture(scope="session", params=MATRIX, ids=[c.name for c in MATRIX])
def baked(request: pytest.FixtureRequest, cookies_session: Any) -> Baked:
    return _bake(cookies_session, request.param)


APP_TEST_MATRIX = [c for c in MATRIX if c.run_app_tests]


@pytest.fixture(scope="session", params=APP_TEST_MATRIX, ids=[c.name for c in APP_TEST_MATRIX])
def baked_with_app_tests(request: pytest.FixtureRequest, cookies_session: Any) -> Baked:
    return _bake(cookies_session, request.param)


OIDC_MATRIX = [c for c in MATRIX if c.answer("aws_auth") == "oidc_managed_identity"]


@pytest.fixture(scope="session", params=OIDC_MATRIX, ids=[c.name for c in OIDC_MATRIX])
def baked_oidc(request: pytest.FixtureRequest, cookies_session: Any) -> Baked:
    return _bake(cookies_session, request.param)


@pytest.fixture(scope="session")
def baked_defaults(cookies_session: Any) -> Baked:
    """The app every default answer gives (what the README's commands produce)."""
    return _bake(cookies_session, MATRIX[0])


def load_hook(name: str) -> ModuleType:
    """A hook as a module, unrendered: its Jinja sits in a string that only main() parses."""
    spec = importlib.util.spec_from_file_location(name, TEMPLATE_DIR / "hooks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
