"""Settings: defaults from the template answers, and errors that name the setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.engine.settings import SETTINGS_HELP, Settings, SettingsError

REQUIRED = {"SQS_INPUT_QUEUE": "in", "SQS_OUTPUT_QUEUE": "out"}


def test_required_queue_settings_are_named_when_missing() -> None:
    with pytest.raises(SettingsError, match="SQS_INPUT_QUEUE is not set"):
        Settings.from_env({"SQS_OUTPUT_QUEUE": "out"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SQS_WAIT_TIME_SECONDS", "21"),
        ("SQS_LINGER_SECONDS", "soon"),
        ("SQS_MAX_CONCURRENCY", "zero"),
        ("SQS_VISIBILITY_TIMEOUT_SECONDS", "43201"),
        ("AWS_AUTH_MODE", "static_keys"),
        ("AWS_RETRY_MODE", "sometimes"),
        ("SQS_POLL_UNTIL_NEXT_TICK", "always"),
    ],
)
def test_malformed_settings_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({**REQUIRED, name: value})


def test_defaults_come_from_the_template_answers() -> None:
    settings = Settings.from_env(REQUIRED)
    assert settings.region == "{{ cookiecutter.aws_region }}"
    assert settings.max_receive_count == {{ cookiecutter.max_receive_count }}
    assert settings.auth_mode == "{{ cookiecutter.aws_auth }}"
    # Continuous polling costs nothing more only where the instance is paid for anyway.
    assert settings.poll_until_next_tick is {{ cookiecutter.hosting_plan == "premium" }}
    assert Settings.from_env({**REQUIRED, "SQS_POLL_UNTIL_NEXT_TICK": "true"}).poll_until_next_tick
    assert not Settings.from_env({**REQUIRED, "SQS_POLL_UNTIL_NEXT_TICK": "false"}).poll_until_next_tick
    assert settings.drain_budget_seconds == {{ cookiecutter.__drain_budget_seconds }}


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    undocumented = [name for name in SETTINGS_HELP if f"`{name}`" not in readme]
    assert undocumented == []


# Settings the Functions host or botocore read themselves, not the app's Settings.
HOST_AND_SDK_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "AzureWebJobsStorage",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}


def test_settings_files_name_only_settings_the_app_knows() -> None:
    root = Path(__file__).parents[1]
    local = json.loads((root / "local.settings.json").read_text(encoding="utf-8"))["Values"]
    azure = json.loads((root / "infra" / "azure" / "app-settings.json").read_text(encoding="utf-8"))
    named = set(local) | {entry["name"] for entry in azure}
    assert named - set(SETTINGS_HELP) - HOST_AND_SDK_SETTINGS == set()


def test_azure_app_settings_give_the_app_a_valid_configuration() -> None:
    root = Path(__file__).parents[1]
    azure = json.loads((root / "infra" / "azure" / "app-settings.json").read_text(encoding="utf-8"))
    local = json.loads((root / "local.settings.json").read_text(encoding="utf-8"))["Values"]
    # The queues are the Bicep's parameters (the answered names, then the AWS stack's URLs).
    queues = {name: local[name] for name in ("SQS_INPUT_QUEUE", "SQS_OUTPUT_QUEUE", "SQS_DLQ")}
    settings = Settings.from_env({**{entry["name"]: entry["value"] for entry in azure}, **queues})
    assert settings.auth_mode == "{{ cookiecutter.aws_auth }}"
    # Continuous polling costs nothing more only where the instance is paid for anyway.
    assert settings.poll_until_next_tick is {{ cookiecutter.hosting_plan == "premium" }}
    assert Settings.from_env({**REQUIRED, "SQS_POLL_UNTIL_NEXT_TICK": "true"}).poll_until_next_tick
    assert not Settings.from_env({**REQUIRED, "SQS_POLL_UNTIL_NEXT_TICK": "false"}).poll_until_next_tick
