"""deploy/github_environment.py against a fake ``gh`` on PATH: a small stand-in for GitHub's environments
API and variables that records every call. The setup must leave the ``production`` environment admitting
``main`` alone, whatever state it finds, before the workflow's variables are set; and say when it cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deploy.github_environment import main

REPOSITORY = "owner/app"
OUTPUTS = {
    "AZURE_DEPLOY_CLIENT_ID": "deploy-client-id",
    "AZURE_IDENTITY_TENANT_ID": "tenant-id",
    "AZURE_SUBSCRIPTION_ID": "subscription-id",
    "AZURE_FUNCTION_APP_NAME": "func-app",
    "AZURE_RESOURCE_GROUP": "rg-app",
    "AZURE_FUNCTION_APP_PACKAGE_URL": "https://stpkg.blob.core.windows.net/app-package/function-app.zip",
}
# The fake gh: GitHub's answers for the calls the setup makes, from a state file; every call logged.
FAKE_GH = r"""
import json, os, sys
state_path, log_path = os.environ["FAKE_GH_STATE"], os.environ["FAKE_GH_LOG"]
state = json.load(open(state_path))
args = sys.argv[1:]
stdin = sys.stdin.read() if "--input" in args else None
with open(log_path, "a") as log:
    log.write(json.dumps({"args": args, "stdin": stdin}) + "\n")

def fail(status, message):
    sys.stderr.write(f"gh: {message} (HTTP {status})\n")
    sys.exit(1)

def answer(document):
    json.dump(state, open(state_path, "w"))
    print(json.dumps(document) if document is not None else "")
    sys.exit(0)

if args[:2] == ["variable", "set"]:
    assert args[3] == "--body" and args[5] == "--repo", args
    state["variables"][args[6]] = {**state["variables"].get(args[6], {}), args[2]: args[4]}
    answer(None)
assert args[0] == "api", args
method, path = args[args.index("--method") + 1], [a for a in args if a.startswith("repos/")][0]
path, _, query = path.partition("?")
parts = path.split("/")
if state.get("refuse"):
    fail(403, state["refuse"])
repository, rest = "/".join(parts[1:3]), parts[3:]
assert rest[0] == "environments", path
name = rest[1]
environments = state["environments"].setdefault(repository, {})
if len(rest) == 2:
    if method == "GET":
        if name not in environments:
            fail(404, "Not Found")
        answer(environments[name])
    if method == "PUT":
        body = json.loads(stdin)
        environment = environments.setdefault(name, {"name": name, "protection_rules": [], "policies": []})
        environment["deployment_branch_policy"] = body.get("deployment_branch_policy")
        rules = []
        if "reviewers" in body:
            listed = [{"type": r["type"], "reviewer": {"id": r["id"]}} for r in body["reviewers"]]
            rule = {"type": "required_reviewers", "prevent_self_review": body.get("prevent_self_review")}
            rules.append({**rule, "reviewers": listed})
        if "wait_timer" in body:
            rules.append({"type": "wait_timer", "wait_timer": body["wait_timer"]})
        environment["protection_rules"] = rules
        answer(environment)
environment = environments.get(name) or fail(404, "Not Found")
policies = environment["policies"]
if len(rest) == 3 and method == "GET":
    answer({"total_count": len(policies), "branch_policies": policies})
if len(rest) == 3 and method == "POST":
    if not (environment.get("deployment_branch_policy") or {}).get("custom_branch_policies"):
        fail(404, "Not Found")
    body = json.loads(stdin)
    state["next_id"] += 1
    policies.append({"id": state["next_id"], "name": body["name"], "type": body.get("type", "branch")})
    answer(policies[-1])
if len(rest) == 4 and method == "DELETE":
    environment["policies"] = [p for p in policies if str(p["id"]) != rest[3]]
    answer(None)
fail(404, f"no fake for {method} {path}")
"""


class FakeGitHub:
    def __init__(self, folder: Path) -> None:
        self.bin = folder / "bin"
        self.bin.mkdir()
        self.state_path = folder / "state.json"
        self.log_path = folder / "calls.jsonl"
        self.log_path.write_text("", encoding="utf-8")
        gh = self.bin / "gh"
        gh.write_text(f"#!{sys.executable}\n{FAKE_GH}", encoding="utf-8")
        gh.chmod(0o755)
        self.save({"environments": {}, "variables": {}, "next_id": 100})

    def save(self, state: dict[str, Any]) -> None:
        self.state_path.write_text(json.dumps(state), encoding="utf-8")

    @property
    def state(self) -> dict[str, Any]:
        return dict(json.loads(self.state_path.read_text(encoding="utf-8")))

    @property
    def calls(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]

    def environment(self, name: str = "production") -> dict[str, Any]:
        return dict(self.state["environments"][REPOSITORY][name])


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    fake = FakeGitHub(tmp_path)
    monkeypatch.setenv("PATH", str(fake.bin))
    monkeypatch.setenv("FAKE_GH_STATE", str(fake.state_path))
    monkeypatch.setenv("FAKE_GH_LOG", str(fake.log_path))
    return fake


def the_lock(environment: dict[str, Any]) -> tuple[Any, list[tuple[str, str]]]:
    branches = [(p["type"], p["name"]) for p in environment["policies"]]
    return environment["deployment_branch_policy"], branches


LOCKED = ({"protected_branches": False, "custom_branch_policies": True}, [("branch", "main")])


def test_a_new_repository_gets_the_environment_locked_to_main_then_the_variables(
    github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([], {**OUTPUTS, "GITHUB_REPOSITORY": REPOSITORY}) == 0

    assert the_lock(github.environment()) == LOCKED
    assert github.state["variables"][REPOSITORY] == {
        "AZURE_CLIENT_ID": "deploy-client-id",
        "AZURE_TENANT_ID": "tenant-id",
        "AZURE_SUBSCRIPTION_ID": "subscription-id",
        "AZURE_FUNCTIONAPP_NAME": "func-app",
        "AZURE_RESOURCE_GROUP": "rg-app",
        "AZURE_FUNCTION_APP_PACKAGE_URL": OUTPUTS["AZURE_FUNCTION_APP_PACKAGE_URL"],
    }
    # The environment is locked before any variable names the deploy identity.
    kinds = [" ".join(c["args"][:3]) if c["args"][0] != "api" else c["args"][2] for c in github.calls]
    first_variable = next(i for i, kind in enumerate(kinds) if kind.startswith("variable"))
    assert "PUT" in kinds[:first_variable] and "POST" in kinds[:first_variable]
    assert all(
        c["args"][-1].startswith(f"repos/{REPOSITORY}/") or c["args"][-2:] == ["--input", "-"]
        for c in github.calls
        if c["args"][0] == "api"
    )
    assert "admits deployments from main only" in capsys.readouterr().out


def test_an_open_environment_is_closed_to_main_keeping_its_reviewers_and_wait(
    github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    reviewers = {
        "type": "required_reviewers",
        "prevent_self_review": True,
        "reviewers": [{"type": "User", "reviewer": {"id": 7}}],
    }
    github.save(
        {
            "environments": {
                REPOSITORY: {
                    "production": {
                        "name": "production",
                        "deployment_branch_policy": {
                            "protected_branches": False,
                            "custom_branch_policies": True,
                        },
                        "protection_rules": [reviewers, {"type": "wait_timer", "wait_timer": 5}],
                        "policies": [
                            {"id": 1, "name": "*", "type": "branch"},
                            {"id": 2, "name": "main", "type": "branch"},
                            {"id": 3, "name": "v*", "type": "tag"},
                        ],
                    }
                }
            },
            "variables": {},
            "next_id": 100,
        }
    )
    flex = {k: v for k, v in OUTPUTS.items() if k != "AZURE_FUNCTION_APP_PACKAGE_URL"}

    assert main(["--repository", REPOSITORY], flex) == 0

    environment = github.environment()
    assert the_lock(environment) == LOCKED
    assert environment["protection_rules"] == [reviewers, {"type": "wait_timer", "wait_timer": 5}]
    printed = capsys.readouterr().out
    assert "Removed deployment policy branch * from environment production" in printed
    assert "Removed deployment policy tag v*" in printed
    # Flex: no package, so no package variables.
    assert set(github.state["variables"][REPOSITORY]) == {
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_SUBSCRIPTION_ID",
        "AZURE_FUNCTIONAPP_NAME",
    }


def test_protected_branches_mode_is_replaced_by_the_main_policy(github: FakeGitHub) -> None:
    github.save(
        {
            "environments": {
                REPOSITORY: {
                    "production": {
                        "name": "production",
                        "deployment_branch_policy": {
                            "protected_branches": True,
                            "custom_branch_policies": False,
                        },
                        "protection_rules": [],
                        "policies": [],
                    }
                }
            },
            "variables": {},
            "next_id": 100,
        }
    )
    assert main(["--repository", REPOSITORY], OUTPUTS) == 0
    assert the_lock(github.environment()) == LOCKED


def test_when_github_refuses_it_fails_and_says_the_environment_is_open(
    github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github.save({"environments": {}, "variables": {}, "next_id": 100, "refuse": "Must have admin rights"})

    assert main(["--repository", REPOSITORY], OUTPUTS) == 1

    error = capsys.readouterr().err
    assert "Must have admin rights" in error
    assert "not locked to main yet" in error
    assert github.state["variables"] == {}


@pytest.mark.usefixtures("hook_without_azd")
def test_without_gh_it_fails_and_says_the_environment_is_open(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--repository", REPOSITORY], OUTPUTS) == 1
    assert "not locked to main yet" in capsys.readouterr().err


def test_the_postprovision_hook_locks_the_environment_before_the_aws_step(github: FakeGitHub) -> None:
    # The hook as azd runs it once GITHUB_REPOSITORY is set: the Bicep's outputs in its environment. The AWS
    # step after it fails here (no identity IDs, no AWS), so the hook stops; the lock is already in place.
    project = Path(__file__).parents[1]
    python = github.bin / "python3"  # this interpreter, whose environment has the deploy step's libraries
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    python.chmod(0o755)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_"))},
        **OUTPUTS,
        "GITHUB_REPOSITORY": REPOSITORY,
        "PATH": f"{github.bin}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    hook = project / "infra" / "hooks" / "postprovision.sh"
    sh = "/bin/sh"  # as azd runs a posix hook
    result = subprocess.run([sh, hook], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0, result.stdout  # the AWS step, with nothing to reach
    assert the_lock(github.environment()) == LOCKED, result.stderr
    assert "admits deployments from main only" in result.stdout
