"""Settings: one table, defaults from the template answers, errors that name the setting; no default
written twice, and the settings files are the table's."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.engine.settings import (
    SETTINGS_HELP,
    TABLE,
    IdempotencySettings,
    Settings,
    SettingsError,
    settings_files,
)

from .project_files import kept_files

PROJECT = Path(__file__).parents[1]
PACKAGE = PROJECT / "{{ cookiecutter.package_name }}"

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
    # What the delivery_latency answer derived (engine/delivery_plan.py): continuous for a second.
    assert settings.poll_until_next_tick is {{ (cookiecutter | delivery_plan).continuous }}
    assert settings.poll_while_busy is False
    assert Settings.from_env({**REQUIRED, "SQS_POLL_UNTIL_NEXT_TICK": "true"}).poll_until_next_tick
    assert not Settings.from_env({**REQUIRED, "SQS_POLL_UNTIL_NEXT_TICK": "false"}).poll_until_next_tick
    assert settings.drain_budget_seconds == {{ cookiecutter.__drain_budget_seconds }}


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    undocumented = [name for name in SETTINGS_HELP if f"`{name}`" not in readme]
    assert undocumented == []


def configuration_rows() -> dict[str, str]:
    """The README's Configuration table: setting -> its row's text."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = (line.split(" | ", 1) for line in section.splitlines() if line.startswith("| `"))
    return {name.strip("| `"): text for name, text in rows}


def test_the_configuration_table_says_where_each_default_applies() -> None:
    rows = configuration_rows()
    for setting in TABLE:
        row = rows[setting.name]
        local = setting.local_text
        if local is not None and local != setting.default_text:
            # func start and the local commands see the file's value, not the default.
            assert f"`local.settings.json`: `{local}`" in row, setting.name
        if local is not None and not setting.default_text:
            # No default: what a local run has is the file's, not the app's.
            assert "Default" not in row, setting.name


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
    # What the delivery_latency answer derived (engine/delivery_plan.py): continuous for a second.
    assert settings.poll_until_next_tick is {{ (cookiecutter | delivery_plan).continuous }}
    assert settings.poll_while_busy is False
    assert Settings.from_env({**REQUIRED, "SQS_POLL_UNTIL_NEXT_TICK": "true"}).poll_until_next_tick
    assert not Settings.from_env({**REQUIRED, "SQS_POLL_UNTIL_NEXT_TICK": "false"}).poll_until_next_tick


def test_the_settings_files_are_the_tables() -> None:
    # Both are written from the table at bake time; after adding a row, rewrite them with
    # settings_files() (or by hand, and this test says what differs).
    for relative, text in settings_files().items():
        assert json.loads((PROJECT / relative).read_text(encoding="utf-8")) == json.loads(text), relative


# Fields of the settings classes and the drain's options that are not settings (the drain's own tuning).
NOT_SETTINGS = {
    "heartbeat_fraction",
    "ack_linger_seconds",
    "max_receives_in_flight",
    "max_ack_calls_in_flight",
    "hold_limit_seconds",  # SQS's 12 hours, less a margin
    "session_name",
}
SETTINGS_CLASSES = {"Settings", "OidcSettings", "IdempotencySettings", "DrainOptions"}


def class_field_defaults(tree: ast.Module) -> list[tuple[str, str, ast.expr]]:
    return [
        (node.name, statement.target.id, statement.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name in SETTINGS_CLASSES
        for statement in node.body
        if isinstance(statement, ast.AnnAssign)
        and isinstance(statement.target, ast.Name)
        and statement.value is not None
    ]


def test_no_settings_default_is_written_twice() -> None:
    names = {setting.name for setting in TABLE}
    written_twice = []
    checked = 0
    for path in (p for p in kept_files(PACKAGE) if p.suffix == ".py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(PROJECT)
        # A settings field's default is the table's (``X.default``), never a value of its own.
        for cls, name, default in class_field_defaults(tree):
            checked += 1
            is_table_default = isinstance(default, ast.Attribute) and default.attr == "default"
            if name not in NOT_SETTINGS and not is_table_default:
                written_twice.append(f"{where}: {cls}.{name} = {ast.unparse(default)}")
        # Nothing reads a setting past the table with a fallback of its own: env.get("NAME", default).
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("get", "getenv", "setdefault")
                and len(node.args) >= 2
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in names
            ):
                written_twice.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    assert checked >= 20, "the settings classes were not found"
    assert written_twice == []


def test_the_visibility_timeout_is_the_apps_alone() -> None:
    # Each receive asks for SQS_VISIBILITY_TIMEOUT_SECONDS, so the queues do not set one of their own.
    template = (PROJECT / "infra" / "aws" / "template.yaml").read_text(encoding="utf-8")
    assert "VisibilityTimeout:" not in template


def test_the_idempotency_lease_follows_the_visibility_timeout() -> None:
    assert IdempotencySettings.from_env({}).in_progress_seconds == Settings.visibility_timeout_seconds
    follows = IdempotencySettings.from_env({"SQS_VISIBILITY_TIMEOUT_SECONDS": "90"})
    assert follows.in_progress_seconds == 90
    own = {"SQS_VISIBILITY_TIMEOUT_SECONDS": "90", "IDEMPOTENCY_IN_PROGRESS_SECONDS": "30"}
    assert IdempotencySettings.from_env(own).in_progress_seconds == 30
