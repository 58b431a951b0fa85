"""Every offered plan bakes an app whose deploy paths can deliver its code, with no storage key (issue 19).

The Bicep's expressions are evaluated in Python (tests/bicep_eval.py) with each bake's parameter
defaults, so the tests read what ARM would set: the app settings per plan, the resource names per
environment name, the parameters azd passes on a first `azd up`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .bicep_eval import Evaluator, evaluate_file, parse
from .conftest import Baked

AZURE = Path("infra/azure")
USER_IDENTITY_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-test"
    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-test"
)
CONTAINER_URL = "https://sttest.blob.core.windows.net/app-package"
# Premium and Consumption: the package's own account.
PACKAGE_CONTAINER_URL = "https://stpkgtest.blob.core.windows.net/app-package"
# What each module's outputs are, for evaluating main.bicep (ARM supplies them at deployment).
MODULE_OUTPUTS: dict[str, Any] = {
    "identity": {"outputs": {"id": USER_IDENTITY_ID, "clientId": "client-id", "principalId": "principal-id"}},
    "storage": {
        "outputs": {
            "name": "sttest",
            "deploymentContainerUrl": CONTAINER_URL,
            "deploymentContainerName": "app-package",
        }
    },
    "packageStorage": {
        "outputs": {
            "name": "stpkgtest",
            "deploymentContainerUrl": PACKAGE_CONTAINER_URL,
            "deploymentContainerName": "app-package",
        }
    },
    "monitoring": {
        "outputs": {
            "applicationInsightsConnectionString": "InstrumentationKey=x",
            "applicationInsightsName": "a",
        }
    },
    "functionApp": {
        "outputs": {
            "name": "func",
            "url": "https://func",
            "packageUrl": "",
            "systemAssignedPrincipalId": "sp",
        }
    },
    "githubDeploy": {"outputs": {"clientId": "deploy-client", "principalId": "deploy-principal"}},
}
SYSTEM_MODULE_OUTPUTS = {
    **MODULE_OUTPUTS,
    "identity": {"outputs": {"id": "", "clientId": "", "principalId": ""}},
}


def module_config(tree: dict[str, Any], name: str) -> tuple[Any, dict[str, Any]]:
    """(condition or None, config) of a module declaration as pycep parses it."""
    config = tree["modules"][name]["config"]
    return (config["condition"], config["config"]) if "condition" in config else (None, config)


def main_scope(baked: Baked, environment_name: str = "dev", **parameters: Any) -> Evaluator:
    system = baked.combination.answer("azure_identity") == "system_assigned"
    return evaluate_file(
        baked.path / AZURE / "main.bicep",
        {"environmentName": environment_name, "location": "eastus2", **parameters},
        SYSTEM_MODULE_OUTPUTS if system else MODULE_OUTPUTS,
    )


def site_settings(baked: Baked) -> tuple[dict[str, str], dict[str, Any]]:
    """The function app's settings as ARM would set them, and the site resource (unevaluated)."""
    main = main_scope(baked)
    _, config = module_config(parse(baked.path / AZURE / "main.bicep"), "functionApp")
    params = {name: main(value) for name, value in config["params"].items()}
    module = baked.path / AZURE / "modules" / "function-app.bicep"
    evaluate = evaluate_file(module, params)
    site = parse(module)["resources"]["functionApp"]["config"]
    settings = evaluate(site["properties"]["siteConfig"]["appSettings"])
    names = [entry["name"] for entry in settings]
    assert len(names) == len(set(names)), "a setting is set twice"
    return {entry["name"]: entry["value"] for entry in settings}, {"site": site, "evaluate": evaluate}


def deploy_section(baked: Baked) -> str:
    """The README's Deploy section and docs/deploy.md: every deploy command an owner is shown."""
    readme = (baked.path / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## Deploy\n") :]
    section = section[: section.index("\n## ", 1)]
    return section + (baked.path / "docs" / "deploy.md").read_text(encoding="utf-8")


def commands(text: str) -> list[str]:
    """Each line of the ```bash blocks in ``text``."""
    return [
        line.strip()
        for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
        for line in block.splitlines()
    ]


# Deploy commands that hand the package to the platform by zip deploy (Kudu), which on Linux Consumption
# builds the run-from-package URL from a key-bearing AzureWebJobsStorage and on Elastic Premium writes to
# an Azure Files content share: neither exists with keyless storage (azure-functions-host#9397).
ZIP_DEPLOY = re.compile(r"func azure functionapp publish|config-zip|az functionapp deploy\b|^azd deploy\b")


def test_every_plan_runs_what_its_deploy_paths_deliver(baked: Baked) -> None:
    plan = baked.combination.answer("hosting_plan")
    identity = baked.combination.answer("azure_identity")
    settings, parts = site_settings(baked)
    site, evaluate = parts["site"], parts["evaluate"]
    config = yaml.safe_load((baked.path / "azure.yaml").read_text(encoding="utf-8"))
    hook = (baked.path / "infra" / "hooks" / "postprovision.sh").read_text(encoding="utf-8")
    hook_ps1 = (baked.path / "infra" / "hooks" / "postprovision.ps1").read_text(encoding="utf-8")
    readme = commands(deploy_section(baked))
    workflow_path = baked.path / ".github" / "workflows" / "deploy.yml"
    workflow = yaml.safe_load(workflow_path.read_text(encoding="utf-8")) if workflow_path.exists() else None
    steps = workflow["jobs"]["deploy"]["steps"] if workflow else []
    assert not any(k.startswith("AzureWebJobsStorage") and "AccountKey" in v for k, v in settings.items())

    if plan == "flex_consumption":
        # Flex: code goes into functionAppConfig's container, fetched with the identity; azd, func and
        # functions-action deploy there through the platform.
        storage = evaluate(site["properties"]["functionAppConfig"]["deployment"]["storage"])
        assert (storage["type"], storage["value"]) == ("blobContainer", CONTAINER_URL)
        assert storage["authentication"]["type"] == (
            "SystemAssignedIdentity" if identity == "system_assigned" else "UserAssignedIdentity"
        )
        assert not {"WEBSITE_RUN_FROM_PACKAGE", "FUNCTIONS_WORKER_RUNTIME", "WEBSITE_CONTENTSHARE"} & set(
            settings
        )
        assert config["services"]["api"]["host"] == "function"
        if steps:
            [action] = [s for s in steps if str(s.get("uses", "")).startswith("Azure/functions-action")]
            assert action["with"]["sku"] == "flexconsumption"
        return

    # Premium and Consumption: a package URL with the app's identity, or a content share. The template
    # offers no content share (Azure Files takes only keys), so the URL it is.
    package_url = settings.get("WEBSITE_RUN_FROM_PACKAGE", "")
    content_share = {"WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE"} <= set(settings)
    by_url = package_url.startswith(f"{PACKAGE_CONTAINER_URL}/") and package_url.endswith(".zip")
    assert by_url or content_share, f"{plan}: neither a package URL with an identity nor a content share"
    assert not content_share, "a content share needs an account key"
    expected_identity = "SystemAssigned" if identity == "system_assigned" else USER_IDENTITY_ID
    assert settings["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] == expected_identity
    assert site["identity"]["type"] == ("SystemAssigned" if identity == "system_assigned" else "UserAssigned")
    # A remote build cannot apply to a package run from a URL.
    assert settings.get("SCM_DO_BUILD_DURING_DEPLOYMENT", "false") == "false"
    assert (settings["FUNCTIONS_WORKER_RUNTIME"], settings["FUNCTIONS_EXTENSION_VERSION"]) == ("python", "~4")
    assert "functionAppConfig" not in site["properties"]
    # The URL the deploy step uploads to is the one the app runs.
    assert evaluate("packageUrl") == package_url
    outputs = parse(baked.path / AZURE / "main.bicep")["outputs"]
    assert "packageUrl" in json.dumps(outputs["AZURE_FUNCTION_APP_PACKAGE_URL"])

    # Every deploy path publishes with deploy/publish_package.py and none by zip deploy.
    assert "services" not in config, "azd would zip deploy a function service"
    assert "python -m deploy.publish_package" in hook.replace('"$python"', "python")
    assert "deploy.publish_package" in hook_ps1
    assert not [line for line in readme if ZIP_DEPLOY.search(line)]
    assert any("deploy.publish_package" in line for line in readme)
    if steps:
        assert not [s for s in steps if "functions-action" in str(s.get("uses", ""))]
        [publish] = [s for s in steps if "deploy.publish_package" in str(s.get("run", ""))]
        assert set(publish["env"]) == {
            "AZURE_FUNCTION_APP_NAME",
            "AZURE_RESOURCE_GROUP",
            "AZURE_FUNCTION_APP_PACKAGE_URL",
        }
        assert steps.index(publish) > next(
            i for i, s in enumerate(steps) if "azure/login" in str(s.get("uses"))
        )

    # Who may read and write the package: test_only_the_deployer_may_write_the_package_the_app_runs.
    tree = parse(baked.path / AZURE / "main.bicep")
    for name in ("appReadsPackage", "deployerUploads", "githubUploads"):
        condition, _ = module_config(tree, name)
        assert tree["modules"][name]["detail"]["path"] == "modules/package-access.bicep"
        assert main_scope(baked, deployerPrincipalId="someone", githubRepository="o/r")(condition) is True


# What each built-in role lets its principal do to blobs (its dataActions on containers/blobs), by role ID.
BLOB_RIGHTS = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": {"read", "write"},  # Storage Blob Data Owner
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": {"read", "write"},  # Storage Blob Data Contributor
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": {"read"},  # Storage Blob Data Reader
}


@dataclass(frozen=True)
class BlobGrant:
    principal: str
    account: str
    container: str | None  # None: every container of the account
    rights: frozenset[str]

    def covers(self, account: str, container: str) -> bool:
        return self.account == account and self.container in (None, container)


def storage_module_outputs(params: dict[str, Any]) -> dict[str, Any]:
    """What modules/storage.bicep outputs for ``params``, as ARM would, in Azure's public cloud."""
    container = params.get("deploymentContainerName", "app-package")
    url = f"https://{params['name']}.blob.core.windows.net/{container}" if container else ""
    return {
        "outputs": {
            "name": params["name"],
            "deploymentContainerName": container,
            "deploymentContainerUrl": url,
        }
    }


def blob_grants(baked: Baked, **parameters: Any) -> tuple[Evaluator, list[BlobGrant]]:
    """main.bicep's scope, and every storage role assignment ARM would make, module by module: each module
    whose condition holds, its parameters evaluated in main.bicep's scope, its role assignments (loops
    unrolled) with the storage account and container their scope names."""
    tree = parse(baked.path / AZURE / "main.bicep")
    main = main_scope(baked, **parameters)
    # The storage modules' outputs follow from their parameters: the names the Bicep derives, not mocks.
    outputs = dict(main.scope)
    for name, module in tree["modules"].items():
        condition, config = module_config(tree, name)
        if module["detail"]["path"] == "modules/storage.bicep" and (condition is None or main(condition)):
            outputs[name] = storage_module_outputs({k: main(v) for k, v in config["params"].items()})
    main = Evaluator(main.folder, outputs)
    grants: list[BlobGrant] = []
    for name, module in tree["modules"].items():
        condition, config = module_config(tree, name)
        if condition is not None and not main(condition):
            continue
        path = baked.path / AZURE / module["detail"]["path"]
        resources = parse(path).get("resources", {})
        if not any(r["type"] == "Microsoft.Authorization/roleAssignments" for r in resources.values()):
            continue
        scope = evaluate_file(path, {k: main(v) for k, v in config["params"].items()})
        for resource in resources.values():
            if resource["type"] != "Microsoft.Authorization/roleAssignments":
                continue
            body = resource["config"]
            loop = body.get("loop_type")
            body = body["config"] if "loop_type" in body else body
            items = [{}]
            if loop:
                detail = loop["detail"]
                items = [
                    {detail["item_name"]: {"key": k, "value": v}}
                    for k, v in scope(detail["object_name"]).items()
                ]
            for item in items:
                evaluate = Evaluator(scope.folder, {**scope.scope, **item})
                target = resources[body["scope"]]
                if target["type"] == "Microsoft.Storage/storageAccounts":
                    account, container = evaluate(target["config"]["name"]), None
                elif target["type"] == "Microsoft.Storage/storageAccounts/blobServices/containers":
                    services = resources[target["config"]["parent"]]
                    account = evaluate(resources[services["config"]["parent"]]["config"]["name"])
                    container = evaluate(target["config"]["name"])
                else:
                    continue  # not storage (Application Insights, the function app)
                role = evaluate(body["properties"]["roleDefinitionId"]).rsplit("/", 1)[-1]
                principal = evaluate(body["properties"]["principalId"])
                grants.append(
                    BlobGrant(principal, account, container, frozenset(BLOB_RIGHTS.get(role, set())))
                )
    return main, grants


def rights_on(grants: list[BlobGrant], principal: str, account: str, container: str) -> set[str]:
    return {
        right
        for g in grants
        if g.principal == principal and g.covers(account, container)
        for right in g.rights
    }


def test_only_the_deployer_may_write_the_package_the_app_runs(baked: Baked) -> None:
    main, grants = blob_grants(baked, deployerPrincipalId="deployer-principal", githubRepository="o/r")
    app = main("appPrincipalId")
    host_account = main("storageAccountName")
    # The app's identity keeps the host's state: read and write on the host's account.
    assert rights_on(grants, app, host_account, "azure-webjobs-hosts") == {"read", "write"}
    assert rights_on(grants, app, host_account, "azure-webjobs-secrets") == {"read", "write"}
    if baked.combination.answer("hosting_plan") == "flex_consumption":
        # Flex: the platform writes the deployment container with the app's identity on every deploy, so that
        # identity needs write there (and code in the app has it too): docs/deploy.md says so.
        assert rights_on(grants, app, host_account, "app-package") == {"read", "write"}
        return
    # The blob the app runs (WEBSITE_RUN_FROM_PACKAGE is packageUrl: test_every_plan_runs_what_...).
    _, config = module_config(parse(baked.path / AZURE / "main.bicep"), "functionApp")
    module = baked.path / AZURE / "modules" / "function-app.bicep"
    package_url = evaluate_file(module, {k: main(v) for k, v in config["params"].items()})("packageUrl")
    account = package_url.removeprefix("https://").split(".blob.", 1)[0]
    container = package_url.split(".net/", 1)[1].split("/", 1)[0]
    assert account == main("packageStorageAccountName") != host_account
    # The app's identity reads the package and cannot write it; each deployer writes it.
    assert rights_on(grants, app, account, container) == {"read"}
    assert rights_on(grants, "deployer-principal", account, container) == {"read", "write"}
    assert rights_on(grants, "deploy-principal", account, container) == {"read", "write"}
    # Nobody else holds a right in the package's account.
    assert {g.principal for g in grants if g.account == account} == {
        app,
        "deployer-principal",
        "deploy-principal",
    }


def azd_substitute(value: str, environment: dict[str, str]) -> str:
    """azd's envsubst of a parameters file value: ``${NAME}`` and ``${NAME=default}``."""
    return re.sub(r"\$\{(\w+)(?:=([^}]*))?\}", lambda m: environment.get(m.group(1), m.group(2) or ""), value)


def test_the_first_azd_up_passes_no_empty_value_to_a_min_length_parameter(baked: Baked) -> None:
    # A fresh environment: azd sets AZURE_ENV_NAME and AZURE_LOCATION, nothing else is set yet. azd
    # before 1.15.0 passed an unset variable as "", so each value must be non-empty by itself.
    config = yaml.safe_load((baked.path / "azure.yaml").read_text(encoding="utf-8"))
    assert config["requiredVersions"]["azd"] == ">= 1.15.0"
    fresh = {"AZURE_ENV_NAME": "dev", "AZURE_LOCATION": "eastus2"}
    parameters = json.loads((baked.path / AZURE / "main.parameters.json").read_text(encoding="utf-8"))
    declared = parse(baked.path / AZURE / "main.bicep")["parameters"]
    min_length = {
        name
        for name, parameter in declared.items()
        if any(d.get("type") == "min_length" for d in parameter["decorators"])
    }
    assert {"sqsInputQueue", "sqsOutputQueue", "sqsDlq", "environmentName"} <= min_length
    for name in min_length:
        if name not in parameters["parameters"]:
            assert "default" in declared[name], f"{name}: neither passed nor defaulted"
            continue
        value = azd_substitute(parameters["parameters"][name]["value"], fresh)
        assert value, f"{name} would be passed empty on a first azd up"
    substituted = {name: azd_substitute(p["value"], fresh) for name, p in parameters["parameters"].items()}
    assert substituted["sqsInputQueue"] == baked.context["input_queue_name"]
    assert substituted["deployerPrincipalType"] == "User"


# Naming rules, from "Naming rules and restrictions for Azure resources" (learn.microsoft.com,
# azure-resource-manager/management/resource-name-rules) and, for the container, "Naming and referencing
# containers, blobs, and metadata" (Blob Storage REST reference): (length range, pattern).
NAMING_RULES: dict[str, tuple[tuple[int, int], str]] = {
    # Microsoft.ManagedIdentity/userAssignedIdentities: 3-128, alphanumerics, hyphens and underscores,
    # starting with a letter or digit.
    "identityName": ((3, 128), r"[A-Za-z0-9][A-Za-z0-9_-]*"),
    "deployIdentityName": ((3, 128), r"[A-Za-z0-9][A-Za-z0-9_-]*"),
    # Microsoft.Storage/storageAccounts: 3-24, lower-case letters and digits.
    "storageAccountName": ((3, 24), r"[a-z0-9]+"),
    # Microsoft.OperationalInsights/workspaces: 4-63, alphanumerics and hyphens, starting and ending
    # with an alphanumeric.
    "logAnalyticsName": ((4, 63), r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]"),
    # Microsoft.Insights/components: 1-260, none of %&\?/ nor control characters, not ending in a space
    # or period.
    "applicationInsightsName": ((1, 260), r"[^%&\\?/\x00-\x1f]*[^%&\\?/\x00-\x1f. ]"),
    # Microsoft.Web/sites: 2-60, alphanumerics and hyphens, not starting or ending with a hyphen (the
    # name is also the host name <name>.azurewebsites.net).
    "functionAppName": ((2, 60), r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]"),
    # Microsoft.Web/serverfarms: 1-60, alphanumerics and hyphens.
    "planName": ((1, 60), r"[A-Za-z0-9-]+"),
}
# userAssignedIdentities/federatedIdentityCredentials: 3-120, alphanumerics, hyphens and underscores,
# starting with a letter or digit (Microsoft Entra workload identity federation, "Considerations").
FEDERATED_CREDENTIAL_RULE = ((3, 120), r"[A-Za-z0-9][A-Za-z0-9_-]*")
# Blob containers: 3-63, lower-case letters, digits and hyphens, starting with a letter or digit, no
# two hyphens in a row.
CONTAINER_RULE = ((3, 63), r"[a-z0-9](?!.*--)[a-z0-9-]*")
# azd's environment names: 1-64 of letters, digits and - _ . ( ).
ENVIRONMENT_NAMES = ["a" * 64, "Z" * 64, "my_env.(test)", "(x)", "_", "a.b-c_d(e)" * 6 + "abcd", "-dev-"]


def meets(name: str, rule: tuple[tuple[int, int], str]) -> bool:
    (low, high), pattern = rule
    return low <= len(name) <= high and re.fullmatch(pattern, name) is not None


@pytest.mark.parametrize("environment_name", ENVIRONMENT_NAMES)
def test_every_derived_name_meets_its_resource_rule(baked: Baked, environment_name: str) -> None:
    assert len(environment_name) <= 64 and re.fullmatch(r"[A-Za-z0-9_.()-]+", environment_name)
    scope = main_scope(baked, environment_name)
    broken = {
        variable: scope.scope[variable]
        for variable, rule in NAMING_RULES.items()
        if not meets(scope.scope[variable], rule)
    }
    assert broken == {}
    # The module parameters are these variables (so the names above are the ones deployed).
    tree = parse(baked.path / AZURE / "main.bicep")
    assert module_config(tree, "functionApp")[1]["params"]["name"] == "functionAppName"
    assert module_config(tree, "functionApp")[1]["params"]["planName"] == "planName"
    assert module_config(tree, "monitoring")[1]["params"]["logAnalyticsName"] == "logAnalyticsName"
    assert module_config(tree, "storage")[1]["params"]["name"] == "storageAccountName"
    assert module_config(tree, "identity")[1]["params"]["name"] == "identityName"
    assert module_config(tree, "githubDeploy")[1]["params"]["name"] == "deployIdentityName"
    # azd finds the resources by the environment name as given.
    assert scope.scope["tags"] == {"azd-env-name": environment_name}


@pytest.mark.parametrize("environment", ["production", "prod/eu.west", "release 1.2", "user_x-y"])
def test_the_federated_credential_name_is_valid_for_any_environment(baked: Baked, environment: str) -> None:
    module = baked.path / AZURE / "modules" / "github-deploy.bicep"
    parameters = {"githubRepository": "owner/repo", "githubEnvironment": environment, "name": "id"}
    scope = evaluate_file(module, parameters)
    credential = parse(module)["resources"]["githubTrust"]["config"]["name"]
    assert meets(scope(credential), FEDERATED_CREDENTIAL_RULE), scope(credential)
    container = evaluate_file(baked.path / AZURE / "modules" / "storage.bicep", {}).scope
    assert meets(container["deploymentContainerName"], CONTAINER_RULE)


def test_the_consumption_bicep_refuses_python_it_cannot_run(baked: Baked) -> None:
    python = parse(baked.path / AZURE / "main.bicep")["parameters"]["pythonVersion"]
    [allowed] = [d["argument"] for d in python["decorators"] if d.get("type") == "allowed"]
    plan = baked.combination.answer("hosting_plan")
    assert allowed == (["3.11", "3.12"] if plan == "consumption" else ["3.11", "3.12", "3.13"])
    assert python["default"] in allowed
