"""azure-functions-doctor, an outside linter of v2 Python apps, finds nothing wrong in any baked app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import BIN, Baked, clean_env, run

# The full run's (an outside linter per bake); `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

DOCTOR_PLANS = {
    "consumption": "linux-consumption",
    "flex_consumption": "flex-consumption",
    "premium": "premium",
}

# Warnings accepted on purpose, each with the reason. Any other warning, or any failure, fails the test.
ACCEPTED_WARNINGS = {
    "check_blueprint_registration": (
        "doctor matches Blueprint variables by bare name; function_app.py registers module attributes "
        "(sqs_trigger.bp), which the worker indexes: test_real_worker.py loads all four functions"
    ),
    "check_venv": "a fresh bake has no .venv yet; the README's quick start creates it",
    "check_func_cli": "Core Tools is not installed where the template's tests run (it cannot be, here)",
    "check_func_core_tools_version": "the same: no Core Tools where the template's tests run",
    "check_functions_extension_version": (
        "FUNCTIONS_EXTENSION_VERSION is a platform setting: `az functionapp create --functions-version 4` "
        "sets it in Azure (Flex Consumption refuses it), and locally the Core Tools version picks the host"
    ),
    "check_native_dependency_risk": (
        "requirements.txt is a lock that lists transitive packages too: cryptography (azure-identity, msal) "
        "was always installed, only now named. The lock holds manylinux x86_64 wheels (hashes checked); "
        "tests/test_deploy_package.py builds and imports the package for Azure's Linux platform"
    ),
    "check_app_insights": (
        "Application Insights is the deployer's choice: its connection string is an app setting of the "
        "function app in Azure, not a local setting"
    ),
}


# Failures accepted for one Python version, with the reason.
# (None since 3.10 left the choices: the hooks refuse it, as Azure's support for it ended in October 2026.)
ACCEPTED_FAILURES: dict[tuple[str, str], str] = {}


def test_doctor_finds_no_failure_and_only_accepted_warnings(baked: Baked, tmp_path: Path) -> None:
    report_path = tmp_path / "doctor.json"
    args = [
        str(BIN / "azure-functions-doctor"),
        "doctor",
        "--path",
        str(baked.path),
        "--profile",
        "full",
        "--format",
        "json",
        "--output",
        str(report_path),
        "--target-python",
        baked.combination.answer("python_version"),
        "--hosting-plan",
        DOCTOR_PLANS[baked.combination.answer("hosting_plan")],
    ]
    result = run(args, tmp_path, clean_env())
    report = json.loads(report_path.read_text(encoding="utf-8"))
    items = [item for group in report["results"] for item in group["items"]]

    assert len(items) > 30, "doctor ran fewer checks than its full profile has"
    python = baked.combination.answer("python_version")
    failures = {i["rule_id"]: i["value"] for i in items if i["status"] == "fail"}
    accepted = {rule for rule in failures if (python, rule) in ACCEPTED_FAILURES}
    assert {k: v for k, v in failures.items() if k not in accepted} == {}
    warnings = {i["rule_id"]: i["value"] for i in items if i["status"] == "warn"}
    assert {k: v for k, v in warnings.items() if k not in ACCEPTED_WARNINGS} == {}
    if not accepted:
        assert result.returncode == 0, result.stdout + result.stderr
