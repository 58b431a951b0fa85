"""The GitHub side of the deploy workflow: the ``production`` environment, locked to ``main``, and the
variables ``.github/workflows/deploy.yml`` logs in with.

The Bicep's deploy identity trusts GitHub's token for ``repo:<owner>/<repo>:environment:production``, and
that subject names no branch: any branch whose workflow names the environment gets the identity unless the
environment admits ``main`` only. GitHub creates an environment a workflow names, unprotected, if it does not
exist. So this step, run by azd's postprovision hook as soon as the identity exists (before the AWS step),
makes the environment admit deployments from ``main`` alone, with the GitHub CLI (``gh api``):

1. create or update the environment with custom deployment branch policies (protected branches off), keeping
   its required reviewers and wait timer;
2. remove every branch policy but ``main``, add ``main`` if missing, then read both back and refuse unless
   exactly that holds;
3. set the workflow's variables (``gh variable set``): the deploy identity's client ID, the tenant, the
   subscription, the app's name (and on Premium and Consumption its resource group and package URL).

Why not a subject that names the branch as well: GitHub's subject for a job with an environment holds no ref
unless the repository's OIDC subject template is customized, and that template is repository-wide: it would
change the subject of every other OIDC trust the repository already has.

azd hands the Bicep's outputs to the hook; without azd pass ``--deployment-outputs`` and ``--repository``.
Your ``gh`` login needs admin rights on the repository (environments are a repository setting).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from .outputs import with_deployment_outputs

DEPLOY_BRANCH = "main"
DEFAULT_ENVIRONMENT = "production"
# The workflow's variable, and the deployment output (or azd environment value) it holds.
WORKFLOW_VARIABLES = {
    "AZURE_CLIENT_ID": "AZURE_DEPLOY_CLIENT_ID",
    "AZURE_TENANT_ID": "AZURE_IDENTITY_TENANT_ID",
    "AZURE_SUBSCRIPTION_ID": "AZURE_SUBSCRIPTION_ID",
    "AZURE_FUNCTIONAPP_NAME": "AZURE_FUNCTION_APP_NAME",
}
# Premium and Consumption only: publish_package needs them (Flex has no package URL).
PACKAGE_VARIABLES = {
    "AZURE_RESOURCE_GROUP": "AZURE_RESOURCE_GROUP",
    "AZURE_FUNCTION_APP_PACKAGE_URL": "AZURE_FUNCTION_APP_PACKAGE_URL",
}


class GitHubSetupError(RuntimeError):
    """A GitHub step failed or left the environment open; the message says what to do."""


class GitHub:
    """``gh`` for one repository: REST calls (``gh api``) and variables (``gh variable set``)."""

    def __init__(self, gh: str, repository: str) -> None:
        self.gh = gh
        self.repository = repository

    def _run(self, args: list[str], stdin: str | None = None) -> str:
        result = subprocess.run(  # noqa: S603
            [self.gh, *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            said = result.stderr.strip() or result.stdout
            raise GitHubSetupError(f"`gh {' '.join(args[:3])}` failed: {said}")
        return result.stdout

    def api(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        args = ["api", "--method", method, "-H", "Accept: application/vnd.github+json"]
        args.append(f"repos/{self.repository}/{path}")
        if body is not None:
            args += ["--input", "-"]
        output = self._run(args, json.dumps(body) if body is not None else None)
        return json.loads(output) if output.strip() else None

    def set_variable(self, name: str, value: str) -> None:
        self._run(["variable", "set", name, "--body", value, "--repo", self.repository])


def environment_body(existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """The environment, admitting custom branch policies only, with the reviewers and wait it has."""
    body: dict[str, Any] = {
        "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True}
    }
    for rule in (existing or {}).get("protection_rules", []):
        if rule.get("type") == "required_reviewers":
            reviewers = rule.get("reviewers", [])
            body["reviewers"] = [{"type": r["type"], "id": r["reviewer"]["id"]} for r in reviewers]
            body["prevent_self_review"] = bool(rule.get("prevent_self_review", False))
        elif rule.get("type") == "wait_timer":
            body["wait_timer"] = int(rule.get("wait_timer", 0))
    return body


def _is_deploy_branch(policy: Mapping[str, Any]) -> bool:
    return policy.get("name") == DEPLOY_BRANCH and policy.get("type", "branch") == "branch"


def lock_environment(github: GitHub, environment: str) -> list[str]:
    """Make ``environment`` admit deployments from ``DEPLOY_BRANCH`` only; what was removed."""
    path = f"environments/{quote(environment, safe='')}"
    try:
        existing = github.api("GET", path)
    except GitHubSetupError as error:
        if "404" not in str(error):
            raise
        existing = None
    github.api("PUT", path, environment_body(existing))
    policies = github.api("GET", f"{path}/deployment-branch-policies?per_page=100")["branch_policies"]
    removed = []
    for policy in policies:
        if not _is_deploy_branch(policy):
            github.api("DELETE", f"{path}/deployment-branch-policies/{policy['id']}")
            removed.append(f"{policy.get('type', 'branch')} {policy['name']}")
    if not any(_is_deploy_branch(p) for p in policies):
        github.api("POST", f"{path}/deployment-branch-policies", {"name": DEPLOY_BRANCH, "type": "branch"})
    check_locked(github, environment)
    return removed


def check_locked(github: GitHub, environment: str) -> None:
    """Refuse unless GitHub now says: custom branch policies, and exactly one, ``DEPLOY_BRANCH``."""
    path = f"environments/{quote(environment, safe='')}"
    policy = github.api("GET", path).get("deployment_branch_policy") or {}
    branches = github.api("GET", f"{path}/deployment-branch-policies?per_page=100")["branch_policies"]
    locked = policy.get("custom_branch_policies") is True and policy.get("protected_branches") is False
    if not (locked and len(branches) == 1 and _is_deploy_branch(branches[0])):
        raise GitHubSetupError(
            f"environment {environment} of {github.repository} still admits more than {DEPLOY_BRANCH}: "
            f"{policy}, {[b.get('name') for b in branches]}"
        )


def workflow_variables(values: Mapping[str, str]) -> dict[str, str]:
    """The deploy workflow's variables from the deployment's outputs (``values``)."""
    wanted = dict(WORKFLOW_VARIABLES)
    if values.get("AZURE_FUNCTION_APP_PACKAGE_URL"):
        wanted.update(PACKAGE_VARIABLES)
    missing = [source for source in wanted.values() if not values.get(source)]
    if missing:
        raise GitHubSetupError(
            f"no {', '.join(missing)}: run this after `azd provision` with GITHUB_REPOSITORY set"
        )
    return {name: values[source] for name, source in wanted.items()}


def arguments(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    early, environ = with_deployment_outputs(argv, environ)
    parser = argparse.ArgumentParser(
        prog="python -m deploy.github_environment",
        description=(__doc__ or "").splitlines()[0],
        parents=[early],
    )
    parser.add_argument("--repository", default=environ.get("GITHUB_REPOSITORY", ""), help="owner/name")
    parser.add_argument("--environment", default=DEFAULT_ENVIRONMENT)
    args = parser.parse_args(argv)
    sources = {**WORKFLOW_VARIABLES, **PACKAGE_VARIABLES}.values()
    args.values = {name: environ.get(name, "") for name in sources}
    return args


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = arguments(argv, os.environ if environ is None else environ)
    if not args.repository:
        print("error: no repository: `azd env set GITHUB_REPOSITORY`, or --repository", file=sys.stderr)
        return 2
    gh = shutil.which("gh")
    open_warning = (
        f"The deploy identity trusts environment {args.environment} of {args.repository}, which is not "
        f"locked to {DEPLOY_BRANCH} yet: rerun `azd hooks run postprovision` (or this command) once fixed."
    )
    if gh is None:
        print(f"error: the GitHub CLI (gh) is not installed. {open_warning}", file=sys.stderr)
        return 1
    github = GitHub(gh, args.repository)
    try:
        removed = lock_environment(github, args.environment)
        variables = workflow_variables(args.values)
        for name, value in variables.items():
            github.set_variable(name, value)
    except GitHubSetupError as error:
        print(f"error: {error}. {open_warning}", file=sys.stderr)
        return 1
    for policy in removed:
        print(f"Removed deployment policy {policy} from environment {args.environment}.")
    print(
        f"Environment {args.environment} of {args.repository} admits deployments from {DEPLOY_BRANCH} only; "
        f"variables set: {', '.join(variables)}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
