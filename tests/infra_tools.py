"""checkov in a venv of its own: it pins boto3 (==1.35.49) below what the generated apps are tested with
(requirements-dev.txt), so it cannot share the template's environment. Built once from PyPI, cached under
.cache/checkov/; a lock makes parallel test workers wait for one build."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .conftest import TEMPLATE_DIR

CHECKOV = "checkov==3.3.30"
CACHE = TEMPLATE_DIR / ".cache" / "checkov"
FRAMEWORKS = ("bicep", "cloudformation", "github_actions")
# Offline and quiet: no Prisma Cloud guidelines download, no version check, no telemetry.
OFFLINE = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_SKIP_VERSION_CHECK": "1", "LOG_LEVEL": "ERROR"}


def checkov_bin() -> Path:
    venv = CACHE / CHECKOV.replace("==", "-")
    binary = venv / "bin" / "checkov"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".ready").exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            pip = [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ]
            subprocess.run([*pip, CHECKOV], check=True)
            (venv / ".ready").write_text(CHECKOV, encoding="utf-8")
    return binary


def checkov_reports(project: Path, skip_paths: list[str]) -> dict[str, dict[str, Any]]:
    """One checkov run over the project for the three frameworks: each framework's report."""
    args = [str(checkov_bin()), "-d", ".", "--framework", *FRAMEWORKS, "--skip-download", "-o", "json"]
    for path in skip_paths:
        args += ["--skip-path", path]
    result = subprocess.run(
        args,
        cwd=project,
        env={**os.environ, **OFFLINE},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Exit code 1 means failed checks, which the tests report; anything else is checkov failing.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    return {report["check_type"]: report for report in (reports if isinstance(reports, list) else [reports])}


# Parameter defaults that create the template's optional resources: one variant per message source, each with
# the payload bucket and the alarm mail (test_infra_aws.py checks that between them they create every one).
VARIANTS = {
    source: {"MessageSource": source, "LargePayloadBucket": "create", "AlarmEmail": "alerts@example.com"}
    for source in ("sns", "s3", "eventbridge")
}
_VARIANT_REPORTS: dict[Path, dict[str, Any]] = {}


def template_variants(template: Path) -> dict[str, dict[str, Any]]:
    """The template once per ``VARIANTS`` entry, as its parameters' defaults: checkov evaluates a resource's
    Condition on the defaults, and leaves out a resource whose condition is false."""
    from cfnlint.decode import decode_str

    variants = {}
    for name, defaults in VARIANTS.items():
        document, _ = decode_str(template.read_text(encoding="utf-8"))
        for parameter, value in defaults.items():
            document["Parameters"][parameter]["Default"] = value
        variants[name] = document
    return variants


def checkov_of_template_variants(template: Path) -> dict[str, Any]:
    """checkov's CloudFormation report over ``template_variants`` (one run, cached per template); each
    check's ``file_path`` is ``/<variant>.json``."""
    if template not in _VARIANT_REPORTS:
        with tempfile.TemporaryDirectory(prefix="checkov-variants-") as folder:
            for name, document in template_variants(template).items():
                (Path(folder) / f"{name}.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
            args = [str(checkov_bin()), "-d", folder, "--framework", "cloudformation", "--skip-download"]
            result = subprocess.run(
                [*args, "-o", "json"],
                env={**os.environ, **OFFLINE},
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        assert result.returncode in (0, 1), result.stderr[-3000:]
        _VARIANT_REPORTS[template] = json.loads(result.stdout)
    return _VARIANT_REPORTS[template]
