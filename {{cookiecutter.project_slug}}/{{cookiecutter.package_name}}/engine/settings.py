"""App settings, read from the environment (Azure app settings or local.settings.json).

Every knob of the app is here, with its default, so the README's configuration
table and the code cannot drift apart: the table is built from ``SETTINGS_HELP``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}

AuthMode = Literal["oidc_managed_identity", "default_chain"]
AUTH_MODES: tuple[AuthMode, ...] = ("oidc_managed_identity", "default_chain")
{%- else %}

AuthMode = Literal["default_chain"]
AUTH_MODES: tuple[AuthMode, ...] = ("default_chain",)
{%- endif %}
RetryMode = Literal["standard", "adaptive", "legacy"]
RETRY_MODES: tuple[RetryMode, ...] = ("standard", "adaptive", "legacy")
DEFAULT_AUTH_MODE: AuthMode = "{{ cookiecutter.aws_auth }}"
APP_NAME = "{{ cookiecutter.project_slug }}"
STORAGE_QUEUE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
LOCAL_SETTINGS_FILE = "local.settings.json"

SETTINGS_HELP: dict[str, str] = {
    "SQS_INPUT_QUEUE": "Queue the trigger drains: a name (resolved once) or a full URL.",
    "SQS_OUTPUT_QUEUE": "Queue the send functions write to: a name or a URL.",
    "SQS_DLQ": "Dead-letter queue of the input queue: a name or a URL (ops commands).",
    "SQS_MAX_RECEIVE_COUNT": "Receives before SQS moves a message to the DLQ (queue setup).",
    "SQS_POLL_SCHEDULE": "NCRONTAB schedule of the drain timer.",
    "SQS_WAIT_TIME_SECONDS": "Longest wait of one receive, 0-20; a poll waits only within the linger.",
    "SQS_LINGER_SECONDS": "Seconds a drain goes on once the queue looks empty; its first poll waits as long.",
    "SQS_MAX_CONCURRENCY": "Messages handled at once by one drain.",
    "SQS_DRAIN_BUDGET_SECONDS": "A drain stops receiving after this long; keep it under functionTimeout.",
    "SQS_VISIBILITY_TIMEOUT_SECONDS": "Visibility timeout asked for on receive; the heartbeat extends it.",
    "SQS_RETRY_BACKOFF_BASE_SECONDS": "First backoff of a failed message; it doubles per receive.",
    "SQS_RETRY_BACKOFF_MAX_SECONDS": "Cap of that backoff.",
    "SQS_MAX_MESSAGE_BYTES": "Largest message or batch payload sent, in bytes.",
    "SQS_MAX_BATCH_ITEMS": "Most items one batch request to the HTTP batch function may hold.",
    "SQS_SCALE_OUT_MAX_WORKERS": "Most drain passes at once besides the tick's, on other instances; 0: off.",
    "SQS_SCALE_OUT_QUEUE": "Azure Storage queue (in AzureWebJobsStorage) that carries the drain tokens.",
    "SQS_SCALE_OUT_TARGET_LAG_SECONDS": "Fan out to enough drains to clear the backlog within this long.",
    "SQS_SCALE_OUT_ACTIVATION_BACKLOG": "A backlog of at most this many messages stays on one drain.",
    "AWS_REGION": "AWS region of the queues.",
    "AWS_ENDPOINT_URL": "Endpoint override read by botocore itself (local emulators only).",
    "AWS_RETRY_MODE": "botocore retry mode: standard or adaptive.",
    "AWS_MAX_ATTEMPTS": "botocore attempts per SQS call, retries included.",
    "AWS_AUTH_MODE": "How the app gets AWS credentials: " + " or ".join(AUTH_MODES) + ".",
    "AWS_SDK_DEBUG_LOGS": "true lets boto3, botocore and urllib3 log at DEBUG (bodies and tokens too).",
    "IDEMPOTENCY_TABLE": "Azure table of the idempotency records (in AzureWebJobsStorage's account).",
    "IDEMPOTENCY_TTL_SECONDS": "How long a completed key stays done: duplicates within it are skipped.",
    "IDEMPOTENCY_IN_PROGRESS_SECONDS": "Lease of a running attempt, renewed while it runs; "
    "default SQS_VISIBILITY_TIMEOUT_SECONDS.",
{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}
    "AWS_OIDC_ROLE_ARN": "Role assumed with the managed identity's token (OIDC mode).",
    "AWS_OIDC_AUDIENCE": "Audience (resource) of the Entra ID token requested for AWS STS (OIDC mode).",
    "AWS_OIDC_SESSION_DURATION_SECONDS": "Lifetime of the assumed-role credentials, 1800-43200 (OIDC mode).",
    "AZURE_MANAGED_IDENTITY_CLIENT_ID": "Client ID of a user-assigned identity; empty: system-assigned.",
{%- endif %}
}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    input_queue: str
    output_queue: str
    dlq: str
    max_receive_count: int = {{ cookiecutter.max_receive_count }}
    region: str = "{{ cookiecutter.aws_region }}"
    wait_time_seconds: int = 20
    max_concurrency: int = 32
    drain_budget_seconds: float = {{ cookiecutter.__drain_budget_seconds }}
    visibility_timeout_seconds: int = 60
    linger_seconds: float = 1.0
    retry_backoff_base_seconds: int = 5
    retry_backoff_max_seconds: int = 300
    max_message_bytes: int = 262_144
    max_batch_items: int = 1_000
    scale_out_max_workers: int = 10
    scale_out_queue: str = "sqs-drain-tokens"
    # The default schedule's period: a backlog is gone by the next tick. A shorter lag buys little:
    # the platform adds instances 4 at a time, each after a cold start.
    scale_out_target_lag_seconds: float = 60.0
    # Under 2 s of one drain's work (585 msg/s): an instance started for it would find nothing to do.
    scale_out_activation_backlog: int = 1_000
    retry_mode: RetryMode = "standard"
    max_attempts: int = 5
    auth_mode: AuthMode = DEFAULT_AUTH_MODE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        reader = EnvReader(env)
        defaults = cls(input_queue="", output_queue="", dlq="")
        auth_mode = reader.text("AWS_AUTH_MODE", defaults.auth_mode)
        if auth_mode not in AUTH_MODES:
            raise SettingsError(f"AWS_AUTH_MODE={auth_mode!r} must be one of {', '.join(AUTH_MODES)}")
        retry_mode = reader.text("AWS_RETRY_MODE", defaults.retry_mode)
        if retry_mode not in RETRY_MODES:
            raise SettingsError(f"AWS_RETRY_MODE={retry_mode!r} must be standard, adaptive or legacy")
        return cls(
            input_queue=reader.required("SQS_INPUT_QUEUE"),
            output_queue=reader.required("SQS_OUTPUT_QUEUE"),
            dlq=reader.text("SQS_DLQ", ""),
            max_receive_count=reader.integer("SQS_MAX_RECEIVE_COUNT", defaults.max_receive_count, 1, 1000),
            region=reader.text("AWS_REGION", env.get("AWS_DEFAULT_REGION") or defaults.region),
            wait_time_seconds=reader.integer("SQS_WAIT_TIME_SECONDS", defaults.wait_time_seconds, 0, 20),
            max_concurrency=reader.integer("SQS_MAX_CONCURRENCY", defaults.max_concurrency, 1, 1000),
            drain_budget_seconds=reader.number(
                "SQS_DRAIN_BUDGET_SECONDS", defaults.drain_budget_seconds, 1, 86_400
            ),
            visibility_timeout_seconds=reader.integer(
                "SQS_VISIBILITY_TIMEOUT_SECONDS", defaults.visibility_timeout_seconds, 2, 43_200
            ),
            linger_seconds=reader.number("SQS_LINGER_SECONDS", defaults.linger_seconds, 0, 3_600),
            retry_backoff_base_seconds=reader.integer(
                "SQS_RETRY_BACKOFF_BASE_SECONDS", defaults.retry_backoff_base_seconds, 0, 43_200
            ),
            retry_backoff_max_seconds=reader.integer(
                "SQS_RETRY_BACKOFF_MAX_SECONDS", defaults.retry_backoff_max_seconds, 0, 43_200
            ),
            max_message_bytes=reader.integer(
                "SQS_MAX_MESSAGE_BYTES", defaults.max_message_bytes, 1_024, 1_048_576
            ),
            max_batch_items=reader.integer("SQS_MAX_BATCH_ITEMS", defaults.max_batch_items, 1, 100_000),
            scale_out_max_workers=reader.integer(
                "SQS_SCALE_OUT_MAX_WORKERS", defaults.scale_out_max_workers, 0, 1_000
            ),
            scale_out_queue=reader.storage_queue_name("SQS_SCALE_OUT_QUEUE", defaults.scale_out_queue),
            scale_out_target_lag_seconds=reader.number(
                "SQS_SCALE_OUT_TARGET_LAG_SECONDS", defaults.scale_out_target_lag_seconds, 1, 86_400
            ),
            scale_out_activation_backlog=reader.integer(
                "SQS_SCALE_OUT_ACTIVATION_BACKLOG", defaults.scale_out_activation_backlog, 0, 1_000_000_000
            ),
            retry_mode=retry_mode,
            max_attempts=reader.integer("AWS_MAX_ATTEMPTS", defaults.max_attempts, 1, 20),
            auth_mode=auth_mode,
        )

{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}


ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


@dataclass(frozen=True)
class OidcSettings:
    """How the app trades its managed identity's token for AWS credentials (OIDC mode)."""

    role_arn: str
    audience: str = {{ cookiecutter.token_audience | tojson }}
    managed_identity_client_id: str = {{ cookiecutter.managed_identity_client_id | tojson }}
    # botocore refreshes 15 minutes before expiry: shorter sessions would call STS on every request.
    session_duration_seconds: int = 3600
    # STS takes 2-64 characters of [\w+=,.@-]; every character of the app name is one of them.
    session_name: str = APP_NAME[:64].ljust(2, "_")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OidcSettings:
        reader = EnvReader(os.environ if environ is None else environ)
        defaults = cls(role_arn={{ cookiecutter.aws_role_arn | tojson }})
        role_arn = reader.text("AWS_OIDC_ROLE_ARN", defaults.role_arn)
        if not role_arn:
            raise SettingsError(
                "AWS_OIDC_ROLE_ARN is not set: the role to assume with the managed identity's token "
                "(the RoleArn output of infra/aws). To use keys or a profile instead (locally, or with "
                "an emulator), set AWS_AUTH_MODE=default_chain."
            )
        if not ROLE_ARN.match(role_arn):
            raise SettingsError(
                f"AWS_OIDC_ROLE_ARN={role_arn!r} is not an IAM role ARN "
                "such as 'arn:aws:iam::123456789012:role/my-role'"
            )
        return cls(
            role_arn=role_arn,
            audience=reader.text("AWS_OIDC_AUDIENCE", defaults.audience),
            managed_identity_client_id=reader.text(
                "AZURE_MANAGED_IDENTITY_CLIENT_ID", defaults.managed_identity_client_id
            ),
            session_duration_seconds=reader.integer(
                "AWS_OIDC_SESSION_DURATION_SECONDS", defaults.session_duration_seconds, 1_800, 43_200
            ),
        )
{%- endif %}


TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")


@dataclass(frozen=True)
class IdempotencySettings:
    """Where and for how long ``idempotency`` keeps its records."""

    table: str = "idempotency"
    ttl_seconds: int = 86_400
    # A lease, renewed at a third of its length while the body runs: it bounds how long a
    # crashed attempt blocks its key, as the visibility timeout bounds how long SQS hides it.
    in_progress_seconds: int = Settings.visibility_timeout_seconds

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IdempotencySettings:
        reader = EnvReader(os.environ if environ is None else environ)
        table = reader.text("IDEMPOTENCY_TABLE", cls.table)
        if not TABLE_NAME.match(table):
            raise SettingsError(
                f"IDEMPOTENCY_TABLE={table!r} must be 3-63 letters and digits, starting with a letter"
            )
        visibility = reader.integer(
            "SQS_VISIBILITY_TIMEOUT_SECONDS", Settings.visibility_timeout_seconds, 2, 43_200
        )
        return cls(
            table=table,
            ttl_seconds=reader.integer("IDEMPOTENCY_TTL_SECONDS", cls.ttl_seconds, 1, 31_536_000),
            in_progress_seconds=reader.integer("IDEMPOTENCY_IN_PROGRESS_SECONDS", visibility, 3, 43_200),
        )


class EnvReader:
    """Reads typed settings; every error names the setting and its allowed range."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        value = self._env.get(name, "").strip()
        return value or default

    def required(self, name: str) -> str:
        value = self.text(name, "")
        if not value:
            raise SettingsError(f"{name} is not set: {SETTINGS_HELP[name]}")
        return value

    def storage_queue_name(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if not STORAGE_QUEUE_NAME.match(value) or "--" in value:
            raise SettingsError(
                f"{name}={value!r} is not an Azure Storage queue name: 3-63 lower-case letters, digits "
                "and single hyphens, starting and ending with a letter or digit"
            )
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        return int(self.number(name, default, low, high, whole=True))

    def number(self, name: str, default: float, low: float, high: float, *, whole: bool = False) -> float:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw) if whole else float(raw)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise SettingsError(f"{name}={raw!r} must be {kind} from {low} to {high}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name}={raw!r} must be from {low} to {high}")
        return value


def sdk_debug_logs(environ: Mapping[str, str] | None = None) -> bool:
    """Whether AWS_SDK_DEBUG_LOGS opts in to the AWS SDK's DEBUG logs, which hold secrets."""
    raw = (os.environ if environ is None else environ).get("AWS_SDK_DEBUG_LOGS", "").strip().lower()
    if raw not in ("", "true", "false"):
        raise SettingsError(f"AWS_SDK_DEBUG_LOGS={raw!r} must be true or false")
    return raw == "true"


def local_settings_values(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``Values`` of a ``local.settings.json``, as strings (what ``func start`` exports)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as error:
        raise SettingsError(f"{path} is not valid JSON: {error}") from None
    values = document.get("Values", {}) if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise SettingsError(f'{path}: "Values" must be a JSON object')
    return {
        str(name): value if isinstance(value, str) else json.dumps(value)
        for name, value in values.items()
        if value is not None
    }


def local_settings_path(option: str | None) -> Path | None:
    """The settings file a local command reads: the one named, else ./local.settings.json if any.

    An empty name means none: the environment alone.
    """
    if option == "":
        return None
    if option is None:
        default = Path(LOCAL_SETTINGS_FILE)
        return default if default.is_file() else None
    if not Path(option).is_file():
        raise SettingsError(f"settings file {option} not found")
    return Path(option)


def use_local_settings(
    path: str | os.PathLike[str] | None,
    overrides: Mapping[str, str | None] | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> Settings:
    """Settings for a local command, read the way ``func start`` reads them.

    The values of ``local.settings.json`` at ``path`` (when given) fill the environment
    where it has no value yet, so the environment wins, as under ``func start``; then
    ``overrides`` win over both (``None`` removes a variable). The environment is
    changed in place because botocore and the functions read it themselves.
    """
    env = os.environ if environ is None else environ
    if path is not None:
        for name, value in local_settings_values(path).items():
            env.setdefault(name, value)
    for name, override in (overrides or {}).items():
        if override is None:
            env.pop(name, None)
        else:
            env[name] = override
    return Settings.from_env(env)
