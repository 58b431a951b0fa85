"""infra/azure in every bake: the Bicep parses with pycep-parser (checkov's own parser), its parameters
default to the answers, it sets exactly the settings the app knows and no storage key; checkov finds no
failed check on infra/ and .github/workflows/ (inline skips only, each with its reason); shellcheck passes
the azd hook scripts; azure.yaml wires them."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import decode_str

from delivery_extension import delivery_rule

from . import bicep_eval
from .conftest import BIN, Baked, clean_env, run
from .infra_tools import checkov_of_template_variants, checkov_reports

AZURE = Path("infra/azure")
CLOUDFORMATION = Path("infra/aws/template.yaml")
# Settings of the app's table that must not be set in Azure: the emulator endpoint override.
LOCAL_ONLY = {"AWS_ENDPOINT_URL"}
# Settings the Functions host and platform read (not the app's table), by identity, never by key.
HOST_SETTINGS = {
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    # Premium and Consumption: the package blob, fetched with the app's identity.
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID",
}
KEY_MATERIAL = re.compile(
    r"AccountKey=|SharedAccessSignature|DefaultEndpointsProtocol=|listKeys\(|listAccountSas|"
    r"primaryKey|InstrumentationKey=",
    re.IGNORECASE,
)
SETTINGS_TABLE_SCRIPT = """
import json
from {package}.engine.settings import SETTINGS_HELP
print(json.dumps(sorted(SETTINGS_HELP)))
"""
DEFAULTS_SCRIPT = """
import dataclasses, json, sys
from {package}.engine import settings
environ = json.loads(sys.argv[1])
configured = settings.Settings.from_env(environ)
defaults = settings.Settings(input_queue=environ["SQS_INPUT_QUEUE"], output_queue=environ["SQS_OUTPUT_QUEUE"],
                             dlq=environ["SQS_DLQ"])
print(json.dumps({{"configured": dataclasses.asdict(configured), "defaults": dataclasses.asdict(defaults)}}))
"""


def parse(baked: Baked, relative: str) -> dict[str, Any]:
    return bicep_eval.parse(baked.path / AZURE / relative)


def bicep_files(baked: Baked) -> list[Path]:
    return [p for p in baked.files(str(AZURE)) if p.suffix == ".bicep"]


def settings_table(baked: Baked) -> set[str]:
    result = run(
        [sys.executable, "-c", SETTINGS_TABLE_SCRIPT.format(package=baked.package)], baked.path, clean_env()
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def listed_names(node: Any) -> list[str]:
    """The `name` of each { name, value } entry of a Bicep array literal, as pycep parses it."""
    return [entry["name"] for entry in node] if isinstance(node, list) else []


def answered_settings(baked: Baked) -> dict[str, str]:
    entries = json.loads((baked.path / AZURE / "app-settings.json").read_text(encoding="utf-8"))
    return {entry["name"]: entry["value"] for entry in entries}


def bicep_settings(baked: Baked) -> tuple[set[str], set[str]]:
    """(the app's settings, the host's) that the Bicep sets besides app-settings.json, as ARM would set
    them for this bake (its expressions evaluated: tests/test_plans_deploy.py)."""
    from .test_plans_deploy import site_settings

    main = parse(baked, "main.bicep")
    concat = main["variables"]["appSettings"]["value"]["function"]["parameters"]
    assert concat["arg_1"]["function"]["parameters"]["file_path"] == "app-settings.json"
    app = set(listed_names(concat["arg_2"]))
    module = parse(baked, "modules/function-app.bicep")
    site = module["resources"]["functionApp"]["config"]["properties"]["siteConfig"]
    assert site["appSettings"]["function"]["parameters"]["arg_1"] == "appSettings"
    settings, _ = site_settings(baked)
    host = set(settings) - app - set(answered_settings(baked))
    return app, host


def test_every_bicep_file_parses_and_the_parameters_default_to_the_answers(baked: Baked) -> None:
    for path in bicep_files(baked):
        bicep_eval.parse(path)
    parameters = parse(baked, "main.bicep")["parameters"]
    answer = baked.combination.answer
    defaults = {name: parameter.get("default") for name, parameter in parameters.items()}
    assert defaults["pythonVersion"] == answer("python_version")
    assert defaults["sqsInputQueue"] == baked.context["input_queue_name"]
    assert defaults["sqsOutputQueue"] == baked.context["output_queue_name"]
    assert defaults["sqsDlq"] == baked.context["dlq_name"]
    assert ("awsRoleArn" in defaults) == (answer("aws_auth") == "oidc_managed_identity")
    if "awsRoleArn" in defaults:
        assert defaults["awsRoleArn"] == answer("aws_role_arn")
    # The choices are parameters whose defaults are the answers (one Bicep for every answer).
    assert defaults["existingIdentityId"] == answer("existing_identity_id")
    assert defaults["identityKind"] == answer("azure_identity")
    assert defaults["hostingPlan"] == answer("hosting_plan")
    memory = parameters["instanceMemoryMB"]
    assert (memory["default"], memory["decorators"][0]["argument"]) == (
        int(answer("instance_memory_mb")),
        [512, 2048, 4096],
    )
    # What the delivery_latency answer derives (the one rule, engine/delivery_plan.py).
    latency = baked.context["delivery_latency"]
    chosen = delivery_rule().derive(answer("hosting_plan"), latency, memory["default"])
    assert defaults["timerAlwaysReadyInstances"] == chosen.always_ready
    sku = parse(baked, "modules/function-app.bicep")["resources"]["plan"]["config"]["sku"]["name"]
    assert sku == {"flex_consumption": "FC1", "premium": "EP1", "consumption": "Y1"}[answer("hosting_plan")]


def test_the_bicep_sets_every_setting_the_app_knows_and_no_other(baked: Baked) -> None:
    table = settings_table(baked)
    answered = answered_settings(baked)
    app, host = bicep_settings(baked)
    assert not set(answered) & app, "a setting comes both from app-settings.json and the Bicep"
    assert set(answered) | app == table - LOCAL_ONLY
    assert host <= HOST_SETTINGS
    assert {"AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__credential"} <= host


def test_app_settings_json_holds_the_codes_defaults(baked: Baked) -> None:
    # The answered values parse, and equal what the code would use without them (so neither drifts).
    environ = {
        **answered_settings(baked),
        "SQS_INPUT_QUEUE": baked.context["input_queue_name"],
        "SQS_OUTPUT_QUEUE": baked.context["output_queue_name"],
        "SQS_DLQ": baked.context["dlq_name"],
    }
    script = DEFAULTS_SCRIPT.format(package=baked.package)
    result = run([sys.executable, "-c", script, json.dumps(environ)], baked.path, clean_env())
    assert result.returncode == 0, result.stderr
    compared = json.loads(result.stdout)
    assert compared["configured"] == compared["defaults"]


def test_the_storage_is_keyless_and_nothing_in_infra_holds_a_key(baked: Baked) -> None:
    storage = parse(baked, "modules/storage.bicep")["resources"]["storage"]["config"]["properties"]
    assert storage["allowSharedKeyAccess"] is False
    assert storage["allowBlobPublicAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"
    leaks = [
        f"{path.relative_to(baked.path)}: {match.group(0)}"
        for path in baked.files("infra")
        for match in [KEY_MATERIAL.search(path.read_text(encoding="utf-8"))]
        if match
    ]
    assert leaks == []


_CHECKOV: dict[str, dict[str, dict[str, Any]]] = {}


def checkov_of(baked: Baked) -> dict[str, dict[str, Any]]:
    """checkov's reports for this bake: one run per bake (and xdist worker), shared by the tests below."""
    if baked.combination.name not in _CHECKOV:
        _CHECKOV[baked.combination.name] = checkov_reports(baked.path, [*folders_git_ignores(baked), "tests"])
    return _CHECKOV[baked.combination.name]


def folders_git_ignores(baked: Baked) -> list[str]:
    """The bake's top folders that hold no file git keeps (a venv, caches, packages): checkov walks the
    folder itself, so it is told to skip them."""
    kept = {path.relative_to(baked.path).parts[0] for path in baked.files()}
    return sorted(p.name for p in baked.path.iterdir() if p.is_dir() and p.name not in kept)


@pytest.mark.slow  # checkov: a minute a bake
def test_checkov_finds_no_failed_check_in_infra_or_the_workflows(baked: Baked) -> None:
    reports = checkov_of(baked)
    expected = {"bicep", "cloudformation"} | (
        {"github_actions"} if baked.combination.answer("ci") == "github" else set()
    )
    assert set(reports) == expected
    for framework, report in reports.items():
        summary = report["summary"]
        assert summary["parsing_errors"] == 0, framework
        assert summary["passed"] > 0, f"checkov checked nothing for {framework}"
        failed = [
            f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
            for c in report["results"]["failed_checks"]
        ]
        assert failed == [], framework


@pytest.mark.slow
def test_every_checkov_skip_is_inline_with_a_reason_and_used(baked: Baked) -> None:
    reports = checkov_of(baked)
    template = baked.path / CLOUDFORMATION
    # The CloudFormation resources the defaults leave out (a message source not chosen, the payload bucket)
    # are checked in the template's variants, which create them (tests/infra_tools.py).
    variants = checkov_of_template_variants(template)
    skipped = [
        (framework, check)
        for framework, report in [*reports.items(), ("cloudformation", variants)]
        for check in report["results"]["skipped_checks"]
    ]
    assert all(c["check_result"].get("suppress_comment", "").strip() for _, c in skipped)
    used = {
        (c["check_id"], str(CLOUDFORMATION), c["resource"].rsplit(".", 1)[-1])
        if framework == "cloudformation"
        else (c["check_id"], c["file_path"].lstrip("/"), "")
        for framework, c in skipped
    }
    written = {
        (check_id, str(path.relative_to(baked.path)), "")
        for path in bicep_files(baked)
        for check_id in re.findall(r"checkov:skip=(\w+):", path.read_text(encoding="utf-8"))
    }
    # CloudFormation's skips, each on its resource: one resource's skip is not another's.
    document, _ = decode_str(template.read_text(encoding="utf-8"))
    written |= {
        (skip["id"], str(CLOUDFORMATION), name)
        for name, resource in document["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    assert "checkov:skip" not in template.read_text(encoding="utf-8"), "CloudFormation skips go in Metadata"
    assert written == used, "a skip that checkov no longer needs, or one it ignored"


def test_shellcheck_passes_every_hook_script(baked: Baked) -> None:
    scripts = sorted((baked.path / "infra" / "hooks").glob("*.sh"))
    assert scripts
    result = run([str(BIN / "shellcheck"), "--severity=style", *map(str, scripts)], baked.path, clean_env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_azure_yaml_provisions_the_bicep_and_runs_the_aws_step_after(baked: Baked) -> None:
    config = yaml.safe_load((baked.path / "azure.yaml").read_text(encoding="utf-8"))
    assert config["infra"] == {"provider": "bicep", "path": "infra/azure", "module": "main"}
    if baked.combination.answer("hosting_plan") == "flex_consumption":
        assert config["services"]["api"] == {"project": ".", "language": "python", "host": "function"}
    else:  # azd would zip deploy it: the hook publishes the package instead (tests/test_plans_deploy.py)
        assert "services" not in config
    hook = config["hooks"]["postprovision"]
    for platform in ("posix", "windows"):
        assert (baked.path / hook[platform]["run"]).is_file()
    assert "deploy.aws_stack" in (baked.path / hook["posix"]["run"]).read_text(encoding="utf-8")
    # The tag azd finds the function app by, for `azd deploy`.
    tags = parse(baked, "modules/function-app.bicep")["resources"]["functionApp"]["config"]["tags"]
    assert "azd-service-name" in json.dumps(tags)
    parameters = json.loads((baked.path / AZURE / "main.parameters.json").read_text(encoding="utf-8"))
    declared = parse(baked, "main.bicep")["parameters"]
    assert set(parameters["parameters"]) <= set(declared)


def test_the_deploy_docs_put_azd_first_in_the_issues_order(baked: Baked) -> None:
    readme = baked.docs()
    deploy = (baked.path / "docs" / "deploy.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", deploy, flags=re.MULTILINE)
    expected = [
        "`azd up`",
        "Without azd",
        "The GitHub workflow",
        "Dependencies",
        "Teardown",
        "When a step fails",
    ]
    if baked.combination.answer("ci") != "github":
        expected.remove("The GitHub workflow")
    assert headings == expected
    assert deploy.index("azd up") < deploy.index("**What it creates**") < deploy.index("## Without azd")
    assert "az functionapp create" not in readme
    assert not re.search(r"```bash\n[^`]*\.\.\.[^`]*```", deploy), "a command leaves '...' to guess"


NAMES_SCRIPT = """
import json
from {package}.engine.telemetry import names
print(json.dumps(list(names.ALL_METRICS)))
"""
METRIC_NAME = re.compile(r"\bsqs\.[a-z_]+(?:\.[a-z_]+)+")


def telemetry_names(baked: Baked) -> set[str]:
    result = run([sys.executable, "-c", NAMES_SCRIPT.format(package=baked.package)], baked.path, clean_env())
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def test_the_alert_rules_watch_the_drain_timer_and_the_failure_ratio_by_the_parameters(baked: Baked) -> None:
    main = parse(baked, "main.bicep")
    parameters = main["parameters"]
    assert parameters["alertEmail"]["default"] == ""
    window = parameters["drainSilenceWindow"]
    assert window["default"] in window["decorators"][0]["argument"]
    passed = main["modules"]["alerts"]["config"]["params"]
    for name in (
        "alertEmail",
        "drainSilenceWindow",
        "handlerFailurePercent",
        "handlerFailureMinimumMessages",
    ):
        assert name in parameters
        assert passed[name] == name, f"{name} is not passed to the alerts"
    # The dead man's switch names the timer function the app registers.
    sqs_trigger = (baked.path / baked.package / "functions" / "sqs_trigger.py").read_text(encoding="utf-8")
    assert f"def {passed['drainFunctionName']}(" in sqs_trigger

    alerts = parse(baked, "modules/alerts.bicep")["resources"]
    group = alerts["actionGroup"]["config"]["properties"]
    receivers = group["emailReceivers"]["operator"]["operands"]
    assert receivers["condition"]["function"]["parameters"]["item_to_test"] == "alertEmail"
    assert receivers["true_value"] == []
    assert receivers["false_value"][0]["emailAddress"] == "alertEmail"
    for rule in ("drainSilence", "handlerFailures"):
        resource = alerts[rule]
        assert resource["type"] == "Microsoft.Insights/scheduledQueryRules"
        properties = resource["config"]["properties"]
        assert properties["actions"]["actionGroups"] == [
            {
                "operator": {
                    "type": "property_accessor",
                    "operands": {"operand_1": "actionGroup", "operand_2": "id"},
                }
            }
        ]
        assert properties["scopes"] == [
            {
                "operator": {
                    "type": "property_accessor",
                    "operands": {"operand_1": "applicationInsights", "operand_2": "id"},
                }
            }
        ]
    silence = alerts["drainSilence"]["config"]["properties"]
    assert silence["windowSize"] == "drainSilenceWindow"
    [criterion] = silence["criteria"]["allOf"]
    assert "${drainFunctionName}" in criterion["query"] and "success == true" in criterion["query"]
    assert (criterion["timeAggregation"], criterion["operator"], criterion["threshold"]) == (
        "Count",
        "LessThan",
        1,
    )
    failures = alerts["handlerFailures"]["config"]["properties"]
    [criterion] = failures["criteria"]["allOf"]
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", "handlerFailurePercent")
    assert ">= ${handlerFailureMinimumMessages}" in criterion["query"]
    assert criterion["metricMeasureColumn"] in criterion["query"]
    assert set(METRIC_NAME.findall(criterion["query"])) <= telemetry_names(baked)


# The dead man's switch's query, in the one form the evaluator below reads.
SILENCE_QUERY = re.compile(r'^requests \| where name == "\$\{drainFunctionName\}" and success == true$')


def successful_invocations_counted(query: str, function: str, requests: list[dict[str, Any]]) -> int:
    """The switch's count over ``requests`` (rows of Application Insights' requests table)."""
    assert SILENCE_QUERY.match(query), f"the dead man's switch's query changed: {query!r}; update this test"
    return sum(1 for row in requests if row["name"] == function and row["success"] is True)


def test_the_watchdog_does_not_mask_a_stopped_timer(baked: Baked) -> None:
    """While the timer is stopped, the watchdog drains as drain_input_queue_on_token: the switch, which
    counts only the timer function's successful invocations, still fires (count < 1)."""
    main = parse(baked, "main.bicep")
    timer_function = main["modules"]["alerts"]["config"]["params"]["drainFunctionName"]
    alerts = parse(baked, "modules/alerts.bicep")["resources"]
    [criterion] = alerts["drainSilence"]["config"]["properties"]["criteria"]["allOf"]
    functions = baked.path / baked.package / "functions"
    worker = (functions / "drain_worker.py").read_text(encoding="utf-8")
    trigger = (functions / "sqs_trigger.py").read_text(encoding="utf-8")
    # The watchdog's passes run in the token queue's function, never in the timer's.
    assert "stand_in(" in worker and "def drain_input_queue_on_token(" in worker
    assert "stand_in" not in trigger and timer_function != "drain_input_queue_on_token"
    query, threshold = criterion["query"], criterion["threshold"]
    stalled = [{"name": "drain_input_queue_on_token", "success": True}] * 15  # a period each, 15 minutes
    assert successful_invocations_counted(query, timer_function, stalled) < threshold
    ticking = [{"name": timer_function, "success": True}, *stalled]
    assert successful_invocations_counted(query, timer_function, ticking) >= threshold


def test_the_workbook_charts_only_metrics_the_app_names(baked: Baked) -> None:
    workbook = parse(baked, "modules/workbook.bicep")["resources"]["workbook"]
    assert workbook["type"] == "Microsoft.Insights/workbooks"
    data = workbook["config"]["properties"]["serializedData"]["function"]
    assert (data["type"], data["parameters"]["file_path"]) == ("load_text_content", "../workbook.json")
    assert "workbook" in parse(baked, "main.bicep")["modules"]

    document = json.loads((baked.path / AZURE / "workbook.json").read_text(encoding="utf-8"))
    assert document["version"] == "Notebook/1.0"
    queries = {
        item["content"]["title"]: item["content"]["query"] for item in document["items"] if item["type"] == 3
    }
    named = {name for query in queries.values() for name in METRIC_NAME.findall(query)}
    known = telemetry_names(baked)
    assert named <= known, f"the workbook queries metrics the app does not name: {named - known}"
    charted = {
        "sqs.drain.messages.handled",
        "sqs.drain.messages.failed",
        "sqs.queue.messages.visible",
        "sqs.dlq.messages.visible",
        "sqs.drain.delivery.latency",
        "sqs.drain.pass.duration",
    }
    assert charted <= named
    for title, query in queries.items():
        assert query.startswith("customMetrics"), title
        assert "{TimeRange}" in query, f"{title} ignores the workbook's time range"
