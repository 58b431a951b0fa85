"""How `python -m deploy.aws_stack` finds what it needs without azd: the Azure deployment's outputs, saved
with `az deployment group show --query properties.outputs`, whatever case ARM hands the names back in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deploy import publish_package
from deploy.aws_stack import (
    TEMPLATE,
    arguments,
    main,
    queue_names_for,
    source_bucket_prefix_for,
    stack_name_for,
)

OUTPUTS = {
    # ARM has returned output names with the first letter lower-cased; the Bicep declares them upper-case.
    "azurE_FUNCTION_APP_NAME": {"type": "String", "value": "func-demo-abc123"},
    "AZURE_RESOURCE_GROUP": {"type": "String", "value": "rg-demo"},
    "azure_identity_tenant_id": {"type": "String", "value": "8a2b7c1e-3d4f-4a5b-9c6d-7e8f9a0b1c2d"},
    "AZURE_IDENTITY_PRINCIPAL_ID": {"type": "String", "value": "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"},
}


@pytest.fixture
def outputs_file(tmp_path: Path) -> str:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS), encoding="utf-8")
    return str(path)


def test_the_deployment_outputs_fill_in_the_arguments(outputs_file: str) -> None:
    args = arguments(["--deployment-outputs", outputs_file], {})
    assert (args.function_app, args.resource_group) == ("func-demo-abc123", "rg-demo")
{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}
    assert (args.tenant_id, args.principal_id) == (
        OUTPUTS["azure_identity_tenant_id"]["value"],
        OUTPUTS["AZURE_IDENTITY_PRINCIPAL_ID"]["value"],
    )
{%- endif %}
    # An option given on the command line wins over the file.
    given = arguments(["--deployment-outputs", outputs_file, "--function-app", "other"], {})
    assert given.function_app == "other"


def test_print_app_name_prints_only_the_name(outputs_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--deployment-outputs", outputs_file, "--print-app-name"], {}) == 0
    assert capsys.readouterr().out == "func-demo-abc123\n"
{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}


def test_without_the_identitys_ids_it_refuses_before_calling_aws(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([], {}) == 2
    assert "AZURE_IDENTITY_PRINCIPAL_ID" in capsys.readouterr().err
{%- endif %}


# deploy/publish_package.py (Premium and Consumption): the same outputs name the package and the app.
PACKAGE_URL = "https://stabc123.blob.core.windows.net/app-package/function-app.zip"


def test_the_deployment_outputs_name_the_package_and_the_app(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps({**OUTPUTS, "azurE_FUNCTION_APP_PACKAGE_URL": {"type": "String", "value": PACKAGE_URL}}),
        encoding="utf-8",
    )
    args = publish_package.arguments(["--deployment-outputs", str(path)], {})
    assert (args.package_url, args.function_app) == (PACKAGE_URL, "func-demo-abc123")
    assert args.resource_group == "rg-demo"
    # The app's own Python, from pyproject.toml.
    assert args.python_version == "{{ cookiecutter.python_version }}"


def test_publish_restarts_the_app_and_syncs_its_triggers_through_arm() -> None:
    restart, sync = publish_package.restart_commands("az", "func-demo-abc123", "rg-demo")
    app = ["--name", "func-demo-abc123", "--resource-group", "rg-demo"]
    assert restart == ["az", "functionapp", "restart", *app]
    assert sync[:5] == ["az", "rest", "--method", "post", "--url"]
    assert sync[5] == (
        "/subscriptions/{subscriptionId}/resourceGroups/rg-demo/providers/Microsoft.Web/sites/func-demo-abc123"
        f"/syncfunctiontriggers?api-version={publish_package.SYNC_TRIGGERS_API_VERSION}"
    )


def test_publish_without_a_package_url_refuses_and_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    # Flex Consumption's AZURE_FUNCTION_APP_PACKAGE_URL is empty: it deploys with azd or func instead.
    assert publish_package.main([], {"AZURE_FUNCTION_APP_PACKAGE_URL": ""}) == 2
    assert "Flex Consumption" in capsys.readouterr().err


def test_the_azd_environment_names_the_stack_and_the_queues() -> None:
    args = arguments([], {"AZURE_ENV_NAME": "dev"})
    assert args.stack_name == stack_name_for("dev") == "{{ cookiecutter.project_slug | replace('_', '-') }}-dev"
    assert arguments(["--stack-name", "mine"], {"AZURE_ENV_NAME": "dev"}).stack_name == "mine"
    dev, prod = queue_names_for("dev"), queue_names_for("prod")
    # Two environments in one account and region share no queue; FIFO names keep their suffix.
    assert set(dev.values()).isdisjoint(prod.values())
    answered = queue_names_for("")
    for parameter, name in dev.items():
        fifo = ".fifo" if answered[parameter].endswith(".fifo") else ""
        assert name == answered[parameter].removesuffix(".fifo") + "-dev" + fifo
    for parameter, name in queue_names_for("e" * 60).items():
        assert len(name) <= 80
        assert name.endswith(".fifo") == answered[parameter].endswith(".fifo")


def test_each_azd_environment_names_its_own_s3_source_bucket_within_s3s_limits() -> None:
    # The template's own rule for the prefix (it adds -<account>-<region>-files, up to 63 characters).
    template = TEMPLATE.read_text(encoding="utf-8")
    [pattern] = re.findall(r"SourceBucketPrefix:.*?AllowedPattern: '([^']+)'", template, re.DOTALL)
    long_names = ["production-eu-west-primary-" + "x" * 30, "production-eu-west-primary-" + "y" * 30]
    environments = ["dev", "prod", "Feature_Branch.42", *long_names]
    prefixes = [source_bucket_prefix_for(environment) for environment in environments]
    assert all(re.fullmatch(pattern, prefix) for prefix in prefixes), prefixes
    assert len(set(prefixes)) == len(environments)  # long names that start alike too
    slug = "{{ cookiecutter.project_slug }}"
    if len(slug) <= 25:
        assert prefixes[0] == f"{slug}-dev"


def test_the_payload_bucket_is_asked_for_by_the_azd_environment_or_the_flag() -> None:
    assert arguments([], {}).large_payload_bucket == ""  # unasked: as the stack has it
    assert arguments([], {"AWS_LARGE_PAYLOAD_BUCKET": "create"}).large_payload_bucket == "create"
    given = ["--large-payload-bucket", "none"]
    assert arguments(given, {"AWS_LARGE_PAYLOAD_BUCKET": "create"}).large_payload_bucket == "none"
    with pytest.raises(SystemExit):
        arguments([], {"AWS_LARGE_PAYLOAD_BUCKET": "yes"})
