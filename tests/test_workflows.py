"""The generated GitHub workflows: zizmor (offline) finds nothing on any bake, and a fork's commit cannot
reach the deploy job, read from the workflows' triggers and conditions. Each check is also shown failing on
the kind of workflow it exists to refuse (the earlier workflow_run deploy, an action pinned to a tag)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .conftest import BIN, Baked

SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")
# Events a fork can cause in this repository, or that run with the default branch's context on a fork's
# behalf (workflow_run of a pull request's run, pull_request_target, issue_comment ...).
PUSH_ONLY = {"push": {"branches": ["main"]}}


def zizmor_findings(github_dir: Path) -> list[dict[str, Any]]:
    zizmor = shutil.which("zizmor", path=str(BIN)) or "zizmor"
    result = subprocess.run(
        [zizmor, "--offline", "--quiet", "--format", "json", str(github_dir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    # zizmor exits non-zero when it finds something; a parse failure prints no JSON and fails here.
    assert result.stdout.strip(), result.stderr[-2000:]
    assert "failed to parse" not in result.stderr, result.stderr[-2000:]
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def load_workflow(path: Path) -> dict[str, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    if True in document:
        document["on"] = document.pop(True)
    return document


def uses_lines(text: str) -> list[str]:
    return [line.split("uses:", 1)[1].strip() for line in text.splitlines() if "uses:" in line]


def ways_a_fork_reaches_deploy(deploy: dict[str, Any]) -> list[str]:
    """Why a fork's commit could run the deploy job of ``deploy``; empty when it cannot."""
    reasons: list[str] = []
    triggers = deploy["on"]
    if triggers != PUSH_ONLY:
        reasons.append(f"triggers {triggers!r}: only a push to main may start a deploy")
    jobs = deploy["jobs"]
    job = jobs.get("deploy", {})
    condition = str(job.get("if", ""))
    if "github.event_name == 'push'" not in condition or "github.ref == 'refs/heads/main'" not in condition:
        reasons.append(f"deploy job condition {condition!r} does not require a push to refs/heads/main")
    needs = job.get("needs", [])
    needs = [needs] if isinstance(needs, str) else needs
    tested_here = [n for n in needs if jobs.get(n, {}).get("uses") == "./.github/workflows/ci.yml"]
    if not tested_here:
        reasons.append("the deploy job does not wait for ci.yml run on the same commit in the same run")
    if job.get("environment") != "production":
        reasons.append("the deploy job has no `environment: production` (the identity trusts that subject)")
    for step in job.get("steps", []):
        if str(step.get("uses", "")).startswith("actions/checkout@") and "ref" in step.get("with", {}):
            ref = step["with"]["ref"]
            reasons.append(f"checkout of {ref!r}: another commit than the one pushed and tested")
    return reasons


def github_dir_or_none(baked: Baked) -> Path | None:
    github = baked.path / ".github"
    if baked.combination.answer("ci") != "github":
        assert not github.exists()
        return None
    return github


def test_zizmor_finds_nothing(baked: Baked) -> None:
    github = github_dir_or_none(baked)
    if github is None:
        return
    findings = zizmor_findings(github)
    assert [(f["ident"], f["locations"][0]["concrete"]["feature"]) for f in findings] == []


def test_zizmor_flags_a_tag_pinned_action(baked_defaults: Baked, tmp_path: Path) -> None:
    """The audit above can fail: the same workflows with one action back on a tag."""
    github = tmp_path / ".github"
    shutil.copytree(baked_defaults.path / ".github", github)
    ci = github / "workflows" / "ci.yml"
    text = ci.read_text(encoding="utf-8")
    ci.write_text(re.sub(r"actions/checkout@[0-9a-f]{40} # v[\d.]+", "actions/checkout@v4", text), "utf-8")
    assert "unpinned-uses" in {f["ident"] for f in zizmor_findings(github)}


def test_a_fork_cannot_reach_the_deploy_job(baked: Baked) -> None:
    github = github_dir_or_none(baked)
    if github is None:
        return
    deploy = load_workflow(github / "workflows" / "deploy.yml")
    assert ways_a_fork_reaches_deploy(deploy) == []
    ci = load_workflow(github / "workflows" / "ci.yml")
    # ci.yml runs fork code (pull_request), so it must hold nothing worth stealing.
    assert set(ci["on"]) == {"pull_request", "workflow_call"}
    assert ci["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in ci["jobs"].values())
    assert "secrets." not in (github / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert deploy["permissions"] == {}
    assert deploy["jobs"]["deploy"]["permissions"] == {"contents": "read", "id-token": "write"}


def test_the_former_workflow_run_deploy_is_refused(baked_defaults: Baked) -> None:
    """What the check above refuses: CI's workflow_run on a head branch named main, any head repository."""
    deploy = load_workflow(baked_defaults.path / ".github" / "workflows" / "deploy.yml")
    deploy["on"] = {"workflow_run": {"workflows": ["ci"], "types": ["completed"], "branches": ["main"]}}
    deploy["jobs"]["deploy"]["if"] = "${{ github.event.workflow_run.conclusion == 'success' }}"
    deploy["jobs"]["deploy"].pop("needs")
    deploy["jobs"]["deploy"]["steps"][0]["with"]["ref"] = "${{ github.event.workflow_run.head_sha }}"
    reasons = ways_a_fork_reaches_deploy(deploy)
    assert len(reasons) == 4, reasons


def test_actions_are_pinned_to_commits_and_ship_only_what_funcignore_allows(baked: Baked) -> None:
    github = github_dir_or_none(baked)
    if github is None:
        return
    for workflow in sorted((github / "workflows").glob("*.yml")):
        text = workflow.read_text(encoding="utf-8")
        remote = [u for u in uses_lines(text) if not u.startswith("./")]
        assert remote, workflow.name
        assert [u for u in remote if not SHA_PIN.match(u)] == [], workflow.name
        document = load_workflow(workflow)
        for job in document["jobs"].values():
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, workflow.name
    deploy = load_workflow(github / "workflows" / "deploy.yml")
    steps = deploy["jobs"]["deploy"]["steps"]
    publish = [s for s in steps if str(s.get("uses", "")).startswith("Azure/functions-action@")]
    if baked.combination.answer("hosting_plan") == "flex_consumption":
        assert len(publish) == 1
        assert publish[0]["with"]["respect-funcignore"] is True
    else:
        # Premium and Consumption: deploy/publish_package.py builds the zip from its allowlist.
        assert publish == []
        assert [s["run"] for s in steps if "publish_package" in str(s.get("run", ""))]


def test_installs_check_hashes(baked: Baked) -> None:
    github = github_dir_or_none(baked)
    if github is None:
        return
    ci = (github / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert "pip install --require-hashes" in ci
    deploy = (github / "workflows" / "deploy.yml").read_text(encoding="utf-8")
    installs = [line for line in deploy.splitlines() if "pip install" in line]
    assert all("--require-hashes" in line for line in installs), installs
    # The deploy job holds id-token: write; a source distribution would run its build code there.
    assert all(re.search(r'--only-binary=(":all:"|:all:)\s', line) for line in installs), installs
    # Flex builds on the platform: there the lock's hashes alone switch pip to hash-checking mode.
    assert bool(installs) == (baked.combination.answer("hosting_plan") != "flex_consumption")


def test_the_deploy_identity_trusts_the_production_environment_only(baked: Baked) -> None:
    if baked.combination.answer("ci") != "github":
        return
    bicep = (baked.path / "infra" / "azure" / "modules" / "github-deploy.bicep").read_text(encoding="utf-8")
    subjects = re.findall(r"subject: '([^']*)'", bicep)
    assert subjects == ["repo:${githubRepository}:environment:${githubEnvironment}"]
    assert "param githubEnvironment string = 'production'" in bicep
    deploy = load_workflow(baked.path / ".github" / "workflows" / "deploy.yml")
    assert deploy["jobs"]["deploy"]["environment"] == "production"


def test_dependabot_keeps_actions_and_pip_current(baked: Baked) -> None:
    github = github_dir_or_none(baked)
    if github is None:
        return
    config = yaml.safe_load((github / "dependabot.yml").read_text(encoding="utf-8"))
    assert {u["package-ecosystem"] for u in config["updates"]} == {"github-actions", "pip"}
