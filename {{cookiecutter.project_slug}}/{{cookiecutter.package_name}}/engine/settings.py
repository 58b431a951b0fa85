"""App settings: one table (``TABLE``), read from the environment (Azure app settings or
local.settings.json).

Each row gives a setting's name, default, allowed values and help, once. From it come
``Settings`` (and the drain's options), ``SETTINGS_HELP`` (the README's configuration table is
checked against it), ``infra/azure/app-settings.json`` and ``local.settings.json`` (both written
at bake time by ``settings_files``; tests/test_settings.py checks they still match). To add a
setting: add a row, add it to ``TABLE`` and read it where it is used.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from pathlib import Path
{#- The schedule and polling the delivery_latency answer derives: engine/delivery_plan.py's rule. #}
{%- set delivery = cookiecutter | delivery_plan %}

{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}

AuthMode = Literal["oidc_managed_identity", "default_chain"]
AUTH_MODES: tuple[AuthMode, ...] = ("oidc_managed_identity", "default_chain")
{%- else %}

AuthMode = Literal["default_chain"]
AUTH_MODES: tuple[AuthMode, ...] = ("default_chain",)
{%- endif %}
RetryMode = Literal["standard", "adaptive", "legacy"]
RETRY_MODES: tuple[RetryMode, ...] = ("standard", "adaptive", "legacy")
APP_NAME = "{{ cookiecutter.project_slug }}"
# Who may call the HTTP send functions: a function key's holders, or anyone (function_app.py registers
# the functions with it; an anonymous bake bounds what a request may do, engine/http_io.py).
HttpAuthLevel = Literal["function", "anonymous"]
HTTP_AUTH_LEVEL: HttpAuthLevel = "{{ cookiecutter.http_auth_level }}"
LOCAL_SETTINGS_FILE = "local.settings.json"
# Where a deployment gets a setting: infra/azure/app-settings.json (written from this table),
# the Bicep (values only the deployment knows), or nowhere (local runs only).
Source = Literal["app-settings.json", "bicep", "local only"]

T_co = TypeVar("T_co", covariant=True)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


class Kind(Protocol[T_co]):
    def parse(self, name: str, raw: str) -> T_co: ...


# The kinds are plain classes, not dataclasses: the host imports this module when it indexes the app,
# and each dataclass costs its generated code's compilation at start-up (benchmarks/cold_start.py).
class Text:
    def parse(self, name: str, raw: str) -> str:
        return raw


class Matching:
    __slots__ = ("explanation", "pattern")

    def __init__(self, pattern: re.Pattern[str], explanation: str) -> None:
        self.pattern = pattern
        # What a value must be, after "NAME='value' ".
        self.explanation = explanation

    def parse(self, name: str, raw: str) -> str:
        if not self.pattern.match(raw):
            raise SettingsError(f"{name}={raw!r} {self.explanation}")
        return raw


class Choice:
    __slots__ = ("options",)

    def __init__(self, options: tuple[str, ...]) -> None:
        self.options = options

    def parse(self, name: str, raw: str) -> str:
        if raw not in self.options:
            raise SettingsError(f"{name}={raw!r} must be one of {', '.join(self.options)}")
        return raw


class Whole:
    __slots__ = ("high", "low")

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def parse(self, name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(
                f"{name}={raw!r} must be a whole number from {self.low} to {self.high}"
            ) from None
        if not self.low <= value <= self.high:
            raise SettingsError(f"{name}={raw!r} must be from {self.low} to {self.high}")
        return value


class Number:
    __slots__ = ("high", "low")

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def parse(self, name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} must be a number from {self.low} to {self.high}") from None
        if not self.low <= value <= self.high:
            raise SettingsError(f"{name}={raw!r} must be from {self.low} to {self.high}")
        return value


# Not ``class Setting[T]`` (3.12+): the post-generation hook loads this module with cookiecutter's Python.
@dataclass(frozen=True)
class Setting(Generic[T_co]):  # noqa: UP046, RUF100
    """One row of the table."""

    name: str
    default: T_co
    kind: Kind[T_co]
    help: str
    source: Source = "app-settings.json"
    # In local.settings.json: a string is its value there (local runs differ), True lists the
    # default (the host or the local tools read the file), False leaves it out.
    local: str | bool = False

    def read(self, env: Mapping[str, str]) -> T_co:
        raw = env.get(self.name, "").strip()
        return self.kind.parse(self.name, raw) if raw else self.default

    def required(self, env: Mapping[str, str]) -> T_co:
        if not env.get(self.name, "").strip():
            raise SettingsError(f"{self.name} is not set: {self.help}")
        return self.read(env)

    @property
    def local_text(self) -> str | None:
        if self.local is False:
            return None
        return self.default_text if self.local is True else str(self.local)

    @property
    def default_text(self) -> str:
        """The default as an app setting's value (an empty value means the default)."""
        if self.default is None:
            return ""
        return json.dumps(self.default) if isinstance(self.default, bool) else str(self.default)


class Flag:
    def parse(self, name: str, raw: str) -> bool:
        if raw.lower() not in ("true", "false"):
            raise SettingsError(f"{name}={raw!r} must be true or false")
        return raw.lower() == "true"


STORAGE_QUEUE_NAME = Matching(
    re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"),
    "is not an Azure Storage queue name: 3-63 lower-case letters, digits and single hyphens, "
    "starting and ending with a letter or digit",
)
TABLE_NAME = Matching(
    re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$"), "must be 3-63 letters and digits, starting with a letter"
)
ROLE_ARN = Matching(
    re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$"),
    "is not an IAM role ARN such as 'arn:aws:iam::123456789012:role/my-role'",
)
# SQS hides a message at most 12 h from its receive: within 6 h, a heartbeat, a backoff or a
# hand-back still has room (the drain cuts any of them to end within the 12 h).
WITHIN_SQS_12_HOURS = Whole(0, 21_600)
VISIBILITY = Whole(2, 21_600)
S3_BUCKET_NAME = Matching(
    re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
    "is not an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-'",
)

# The table. Queue names default to the answers in local runs; in Azure the Bicep sets them.
SQS_INPUT_QUEUE = Setting(
    "SQS_INPUT_QUEUE", "", Text(), "Queue the trigger drains: a name (resolved once) or a full URL.",
    source="bicep", local={{ cookiecutter.input_queue_name | tojson }},
)  # fmt: skip
SQS_OUTPUT_QUEUE = Setting(
    "SQS_OUTPUT_QUEUE", "", Text(), "Queue the send functions write to: a name or a URL.",
    source="bicep", local={{ cookiecutter.output_queue_name | tojson }},
)  # fmt: skip
SQS_DLQ = Setting(
    "SQS_DLQ", "", Text(), "Dead-letter queue of the input queue: a name or a URL (ops commands).",
    source="bicep", local={{ cookiecutter.dlq_name | tojson }},
)  # fmt: skip
SQS_MAX_RECEIVE_COUNT = Setting(
    "SQS_MAX_RECEIVE_COUNT", {{ cookiecutter.max_receive_count }}, Whole(1, 1000),
    "Receives before SQS moves a message to the DLQ (queue setup).",
    local=True,  # create-queues and the LocalStack hook set the redrive from it
)  # fmt: skip
# The schedule, the polling and the linger: what the delivery_latency answer ({{ cookiecutter.delivery_latency }} s) derives
# (engine/delivery_plan.py; the ops command `costs` prints their bill):
# {{ delivery.label }}.
SQS_POLL_SCHEDULE = Setting(
    "SQS_POLL_SCHEDULE", {{ delivery.schedule | tojson }}, Text(),
    "NCRONTAB schedule of the drain timer.",
    local="*/10 * * * * *",  # the host resolves %SQS_POLL_SCHEDULE%; locally, every 10 s
)  # fmt: skip
SQS_WAIT_TIME_SECONDS = Setting(
    "SQS_WAIT_TIME_SECONDS", 20, Whole(0, 20),
    "Longest wait of one receive, 0-20; a poll waits only within the linger.",
)  # fmt: skip
SQS_LINGER_SECONDS = Setting[float](
    "SQS_LINGER_SECONDS", {{ delivery.linger_seconds }}, Number(0, 3_600),
    "Seconds a drain goes on once the queue looks empty; its first poll waits as long.",
)  # fmt: skip
SQS_POLL_UNTIL_NEXT_TICK = Setting(
    "SQS_POLL_UNTIL_NEXT_TICK", {{ delivery.continuous }}, Flag(),
    "true: a timer pass long-polls until the next tick is due (continuous; bills its whole period on Flex "
    "and Consumption); false: it stops after the linger.",
)  # fmt: skip
SQS_POLL_WHILE_BUSY = Setting(
    "SQS_POLL_WHILE_BUSY", {{ delivery.poll_while_busy }}, Flag(),
    "true: while messages keep coming, a timer pass polls until the next tick (busy stays fast; bills the "
    "busy time on Flex and Consumption); false: it stops after the linger.",
)  # fmt: skip
# One schedule period: a message within a period of the last would otherwise wait up to a period.
SQS_QUIET_SPELL_SECONDS = Setting[float](
    "SQS_QUIET_SPELL_SECONDS", {{ delivery.quiet_spell_seconds }}, Number(1, 86_400),
    "With SQS_POLL_WHILE_BUSY: after this long without a message, passes stop after the linger again.",
)  # fmt: skip
SQS_MAX_CONCURRENCY = Setting(
    "SQS_MAX_CONCURRENCY", 32, Whole(1, 1000),
    "Handlers running at once in one drain; a message waiting for a retry or a delete holds none.",
)  # fmt: skip
SQS_DRAIN_BUDGET_SECONDS = Setting[float](
    "SQS_DRAIN_BUDGET_SECONDS", {{ cookiecutter.__drain_budget_seconds }}, Number(1, 86_400),
    "A drain stops receiving after this long; keep it under functionTimeout. It holds no message "
    "past 12 h from its receive (SQS's limit): such a message goes back to the queue first.",
    local="60",
)  # fmt: skip
SQS_VISIBILITY_TIMEOUT_SECONDS = Setting(
    "SQS_VISIBILITY_TIMEOUT_SECONDS", 60, VISIBILITY,
    "Visibility timeout asked for on receive, 2-21600; the heartbeat extends it, never past 12 h "
    "from the receive (SQS's limit).",
)  # fmt: skip
SQS_RETRY_BACKOFF_BASE_SECONDS = Setting(
    "SQS_RETRY_BACKOFF_BASE_SECONDS", 5, WITHIN_SQS_12_HOURS,
    "First backoff of a failed message, 0-21600; it doubles per receive.",
)  # fmt: skip
SQS_RETRY_BACKOFF_MAX_SECONDS = Setting(
    "SQS_RETRY_BACKOFF_MAX_SECONDS", 300, WITHIN_SQS_12_HOURS,
    "Cap of that backoff, 0-21600; a backoff never reaches past 12 h from the receive (SQS's "
    "limit): it is cut short to end by then.",
)  # fmt: skip
# The queues' MaximumMessageSize (the max_message_bytes answer; infra/aws's parameter defaults to it).
SQS_MAX_MESSAGE_BYTES = Setting(
    "SQS_MAX_MESSAGE_BYTES", {{ cookiecutter.max_message_bytes }}, Whole(1_024, 1_048_576),
    "Largest message or batch payload sent, in bytes: the queues' MaximumMessageSize.",
    local=True,  # create-queues sets the local queues' MaximumMessageSize from it
)  # fmt: skip
SQS_LARGE_PAYLOAD_BUCKET = Setting(
    "SQS_LARGE_PAYLOAD_BUCKET", "", S3_BUCKET_NAME,
    "S3 bucket of payloads past SQS_MAX_MESSAGE_BYTES, in AWS's extended-client format: the drain reads "
    "them, the sends store them; empty: off.",
    source="bicep",
)  # fmt: skip
SQS_LARGE_PAYLOAD_DELETE = Setting(
    "SQS_LARGE_PAYLOAD_DELETE", False, Flag(),
    "true: delete a payload's S3 object once its handled message is deleted (as the extended client's "
    "delete_payload_from_s3); false: keep it (a lifecycle rule expires it).",
)  # fmt: skip
# Anonymous sends: one request, at most one SendMessageBatch's worth of messages.
SQS_MAX_BATCH_ITEMS = Setting(
    "SQS_MAX_BATCH_ITEMS", 10 if HTTP_AUTH_LEVEL == "anonymous" else 1_000, Whole(1, 100_000),
    "Most items one batch request to the HTTP batch function may hold.",
)  # fmt: skip
SQS_SCALE_OUT_MAX_WORKERS = Setting(
    "SQS_SCALE_OUT_MAX_WORKERS", 10, Whole(0, 1_000),
    "Most drain passes at once besides the tick's, on other instances; 0: off.",
)  # fmt: skip
SQS_SCALE_OUT_QUEUE = Setting(
    "SQS_SCALE_OUT_QUEUE", "sqs-drain-tokens", STORAGE_QUEUE_NAME,
    "Azure Storage queue (in AzureWebJobsStorage) that carries the drain tokens.",
    local=True,  # the host resolves %SQS_SCALE_OUT_QUEUE%
)  # fmt: skip
# The default schedule's period: a backlog is gone by the next tick. A shorter lag buys little: the
# platform adds instances 4 at a time, each after a cold start.
SQS_SCALE_OUT_TARGET_LAG_SECONDS = Setting[float](
    "SQS_SCALE_OUT_TARGET_LAG_SECONDS", 60.0, Number(1, 86_400),
    "Fan out to enough drains to clear the backlog within this long.",
)  # fmt: skip
# Two: one late tick is not a stopped timer. A watchdog fires 2 to 3 periods after the last tick, and
# 10 s at least (scale_out/watchdog.py: a long pass pushes it back every 5 s).
SQS_WATCHDOG_MISSED_TICKS = Setting(
    "SQS_WATCHDOG_MISSED_TICKS", 2, Whole(0, 100),
    "Ticks of SQS_POLL_SCHEDULE the timer may miss before a watchdog on the drain-token queue drains in its "
    "place, at the schedule's pace, until a tick returns; 0: off.",
)  # fmt: skip
# Under 2 s of one drain's work (585 msg/s): an instance started for it would find nothing to do.
SQS_SCALE_OUT_ACTIVATION_BACKLOG = Setting(
    "SQS_SCALE_OUT_ACTIVATION_BACKLOG", 1_000, Whole(0, 1_000_000_000),
    "A backlog of at most this many messages stays on one drain.",
)  # fmt: skip
AWS_REGION = Setting(
    "AWS_REGION", {{ cookiecutter.aws_region | tojson }}, Text(), "AWS region of the queues.",
    local=True,  # the LocalStack hook reads it
)  # fmt: skip
AWS_ENDPOINT_URL = Setting(
    "AWS_ENDPOINT_URL", "", Text(), "Endpoint override read by botocore itself (local emulators only).",
    source="local only", local="http://localhost:4566",
)  # fmt: skip
AWS_RETRY_MODE = Setting[RetryMode](
    "AWS_RETRY_MODE", "standard", cast("Kind[RetryMode]", Choice(RETRY_MODES)),
    "botocore retry mode: standard or adaptive.",
)  # fmt: skip
AWS_MAX_ATTEMPTS = Setting(
    "AWS_MAX_ATTEMPTS", 5, Whole(1, 20), "botocore attempts per SQS call, retries included."
)
AWS_AUTH_MODE = Setting[AuthMode](
    "AWS_AUTH_MODE", "{{ cookiecutter.aws_auth }}", cast("Kind[AuthMode]", Choice(AUTH_MODES)),
    "How the app gets AWS credentials: " + " or ".join(AUTH_MODES) + ".",
    local="default_chain",  # keys or a profile, against an emulator
)  # fmt: skip
AWS_SDK_DEBUG_LOGS = Setting(
    "AWS_SDK_DEBUG_LOGS", False, Flag(),
    "true lets boto3, botocore and urllib3 log at DEBUG (bodies and tokens too).",
)  # fmt: skip
IDEMPOTENCY_TABLE = Setting(
    "IDEMPOTENCY_TABLE", "idempotency", TABLE_NAME,
    "Azure table of the idempotency records (in AzureWebJobsStorage's account).",
)  # fmt: skip
IDEMPOTENCY_TTL_SECONDS = Setting(
    "IDEMPOTENCY_TTL_SECONDS", 86_400, Whole(1, 31_536_000),
    "How long a completed key stays done: duplicates within it are skipped.",
)  # fmt: skip
IDEMPOTENCY_IN_PROGRESS_SECONDS = Setting[int | None](
    "IDEMPOTENCY_IN_PROGRESS_SECONDS", None, Whole(3, 43_200),
    "Lease of a running attempt, renewed while it runs; default SQS_VISIBILITY_TIMEOUT_SECONDS.",
)  # fmt: skip
{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}
AWS_OIDC_ROLE_ARN = Setting(
    "AWS_OIDC_ROLE_ARN", {{ cookiecutter.aws_role_arn | tojson }}, ROLE_ARN,
    "Role assumed with the managed identity's token (OIDC mode).",
    source="bicep",
)  # fmt: skip
AWS_OIDC_AUDIENCE = Setting(
    "AWS_OIDC_AUDIENCE", {{ cookiecutter.token_audience | tojson }}, Text(),
    "Audience (resource) of the Entra ID token requested for AWS STS (OIDC mode).",
)  # fmt: skip
AWS_OIDC_SESSION_DURATION_SECONDS = Setting(
    # botocore refreshes 15 minutes before expiry: shorter sessions would call STS on every request.
    "AWS_OIDC_SESSION_DURATION_SECONDS", 3600, Whole(1_800, 43_200),
    "Lifetime of the assumed-role credentials, 1800-43200 (OIDC mode).",
)  # fmt: skip
AZURE_MANAGED_IDENTITY_CLIENT_ID = Setting(
    "AZURE_MANAGED_IDENTITY_CLIENT_ID", {{ cookiecutter.managed_identity_client_id | tojson }}, Text(),
    "Client ID of a user-assigned identity; empty: system-assigned.",
    source="bicep",
)  # fmt: skip
{%- endif %}

TABLE: tuple[Setting[object], ...] = (
    SQS_INPUT_QUEUE,
    SQS_OUTPUT_QUEUE,
    SQS_DLQ,
    SQS_MAX_RECEIVE_COUNT,
    SQS_POLL_SCHEDULE,
    SQS_WAIT_TIME_SECONDS,
    SQS_LINGER_SECONDS,
    SQS_POLL_UNTIL_NEXT_TICK,
    SQS_POLL_WHILE_BUSY,
    SQS_QUIET_SPELL_SECONDS,
    SQS_MAX_CONCURRENCY,
    SQS_DRAIN_BUDGET_SECONDS,
    SQS_VISIBILITY_TIMEOUT_SECONDS,
    SQS_RETRY_BACKOFF_BASE_SECONDS,
    SQS_RETRY_BACKOFF_MAX_SECONDS,
    SQS_MAX_MESSAGE_BYTES,
    SQS_LARGE_PAYLOAD_BUCKET,
    SQS_LARGE_PAYLOAD_DELETE,
    SQS_MAX_BATCH_ITEMS,
    SQS_SCALE_OUT_MAX_WORKERS,
    SQS_SCALE_OUT_QUEUE,
    SQS_SCALE_OUT_TARGET_LAG_SECONDS,
    SQS_SCALE_OUT_ACTIVATION_BACKLOG,
    SQS_WATCHDOG_MISSED_TICKS,
    AWS_REGION,
    AWS_ENDPOINT_URL,
    AWS_RETRY_MODE,
    AWS_MAX_ATTEMPTS,
    AWS_AUTH_MODE,
    AWS_SDK_DEBUG_LOGS,
    IDEMPOTENCY_TABLE,
    IDEMPOTENCY_TTL_SECONDS,
    IDEMPOTENCY_IN_PROGRESS_SECONDS,
{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}
    AWS_OIDC_ROLE_ARN,
    AWS_OIDC_AUDIENCE,
    AWS_OIDC_SESSION_DURATION_SECONDS,
    AZURE_MANAGED_IDENTITY_CLIENT_ID,
{%- endif %}
)
SETTINGS_HELP: dict[str, str] = {setting.name: setting.help for setting in TABLE}


@dataclass(frozen=True)
class Settings:
    input_queue: str
    output_queue: str
    dlq: str = SQS_DLQ.default
    max_receive_count: int = SQS_MAX_RECEIVE_COUNT.default
    poll_schedule: str = SQS_POLL_SCHEDULE.default
    region: str = AWS_REGION.default
    wait_time_seconds: int = SQS_WAIT_TIME_SECONDS.default
    max_concurrency: int = SQS_MAX_CONCURRENCY.default
    drain_budget_seconds: float = SQS_DRAIN_BUDGET_SECONDS.default
    visibility_timeout_seconds: int = SQS_VISIBILITY_TIMEOUT_SECONDS.default
    linger_seconds: float = SQS_LINGER_SECONDS.default
    poll_until_next_tick: bool = SQS_POLL_UNTIL_NEXT_TICK.default
    poll_while_busy: bool = SQS_POLL_WHILE_BUSY.default
    quiet_spell_seconds: float = SQS_QUIET_SPELL_SECONDS.default
    retry_backoff_base_seconds: int = SQS_RETRY_BACKOFF_BASE_SECONDS.default
    retry_backoff_max_seconds: int = SQS_RETRY_BACKOFF_MAX_SECONDS.default
    max_message_bytes: int = SQS_MAX_MESSAGE_BYTES.default
    large_payload_bucket: str = SQS_LARGE_PAYLOAD_BUCKET.default
    large_payload_delete: bool = SQS_LARGE_PAYLOAD_DELETE.default
    max_batch_items: int = SQS_MAX_BATCH_ITEMS.default
    scale_out_max_workers: int = SQS_SCALE_OUT_MAX_WORKERS.default
    scale_out_queue: str = SQS_SCALE_OUT_QUEUE.default
    scale_out_target_lag_seconds: float = SQS_SCALE_OUT_TARGET_LAG_SECONDS.default
    scale_out_activation_backlog: int = SQS_SCALE_OUT_ACTIVATION_BACKLOG.default
    watchdog_missed_ticks: int = SQS_WATCHDOG_MISSED_TICKS.default
    retry_mode: RetryMode = AWS_RETRY_MODE.default
    max_attempts: int = AWS_MAX_ATTEMPTS.default
    auth_mode: AuthMode = AWS_AUTH_MODE.default

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        # botocore's own fallback, kept: AWS_DEFAULT_REGION when AWS_REGION is unset.
        region_env = {AWS_REGION.name: env.get(AWS_REGION.name) or env.get("AWS_DEFAULT_REGION") or ""}
        return cls(
            input_queue=SQS_INPUT_QUEUE.required(env),
            output_queue=SQS_OUTPUT_QUEUE.required(env),
            dlq=SQS_DLQ.read(env),
            max_receive_count=SQS_MAX_RECEIVE_COUNT.read(env),
            poll_schedule=SQS_POLL_SCHEDULE.read(env),
            region=AWS_REGION.read(region_env),
            wait_time_seconds=SQS_WAIT_TIME_SECONDS.read(env),
            max_concurrency=SQS_MAX_CONCURRENCY.read(env),
            drain_budget_seconds=SQS_DRAIN_BUDGET_SECONDS.read(env),
            visibility_timeout_seconds=SQS_VISIBILITY_TIMEOUT_SECONDS.read(env),
            linger_seconds=SQS_LINGER_SECONDS.read(env),
            poll_until_next_tick=SQS_POLL_UNTIL_NEXT_TICK.read(env),
            poll_while_busy=SQS_POLL_WHILE_BUSY.read(env),
            quiet_spell_seconds=SQS_QUIET_SPELL_SECONDS.read(env),
            retry_backoff_base_seconds=SQS_RETRY_BACKOFF_BASE_SECONDS.read(env),
            retry_backoff_max_seconds=SQS_RETRY_BACKOFF_MAX_SECONDS.read(env),
            max_message_bytes=SQS_MAX_MESSAGE_BYTES.read(env),
            large_payload_bucket=SQS_LARGE_PAYLOAD_BUCKET.read(env),
            large_payload_delete=SQS_LARGE_PAYLOAD_DELETE.read(env),
            max_batch_items=SQS_MAX_BATCH_ITEMS.read(env),
            scale_out_max_workers=SQS_SCALE_OUT_MAX_WORKERS.read(env),
            scale_out_queue=SQS_SCALE_OUT_QUEUE.read(env),
            scale_out_target_lag_seconds=SQS_SCALE_OUT_TARGET_LAG_SECONDS.read(env),
            scale_out_activation_backlog=SQS_SCALE_OUT_ACTIVATION_BACKLOG.read(env),
            watchdog_missed_ticks=SQS_WATCHDOG_MISSED_TICKS.read(env),
            retry_mode=AWS_RETRY_MODE.read(env),
            max_attempts=AWS_MAX_ATTEMPTS.read(env),
            auth_mode=AWS_AUTH_MODE.read(env),
        )

{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}


@dataclass(frozen=True)
class OidcSettings:
    """How the app trades its managed identity's token for AWS credentials (OIDC mode)."""

    role_arn: str
    audience: str = AWS_OIDC_AUDIENCE.default
    managed_identity_client_id: str = AZURE_MANAGED_IDENTITY_CLIENT_ID.default
    session_duration_seconds: int = AWS_OIDC_SESSION_DURATION_SECONDS.default
    # STS takes 2-64 characters of [\w+=,.@-]; every character of the app name is one of them.
    session_name: str = APP_NAME[:64].ljust(2, "_")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OidcSettings:
        env = os.environ if environ is None else environ
        if not AWS_OIDC_ROLE_ARN.read(env):
            raise SettingsError(
                "AWS_OIDC_ROLE_ARN is not set: the role to assume with the managed identity's token "
                "(the RoleArn output of infra/aws). To use keys or a profile instead (locally, or with "
                "an emulator), set AWS_AUTH_MODE=default_chain."
            )
        return cls(
            role_arn=AWS_OIDC_ROLE_ARN.read(env),
            audience=AWS_OIDC_AUDIENCE.read(env),
            managed_identity_client_id=AZURE_MANAGED_IDENTITY_CLIENT_ID.read(env),
            session_duration_seconds=AWS_OIDC_SESSION_DURATION_SECONDS.read(env),
        )
{%- endif %}


@dataclass(frozen=True)
class IdempotencySettings:
    """Where and for how long ``idempotency`` keeps its records."""

    table: str = IDEMPOTENCY_TABLE.default
    ttl_seconds: int = IDEMPOTENCY_TTL_SECONDS.default
    # A lease, renewed at a third of its length while the body runs: it bounds how long a
    # crashed attempt blocks its key, as the visibility timeout bounds how long SQS hides it.
    in_progress_seconds: int = SQS_VISIBILITY_TIMEOUT_SECONDS.default

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IdempotencySettings:
        env = os.environ if environ is None else environ
        in_progress = IDEMPOTENCY_IN_PROGRESS_SECONDS.read(env)
        if in_progress is None:
            in_progress = SQS_VISIBILITY_TIMEOUT_SECONDS.read(env)
        return cls(
            table=IDEMPOTENCY_TABLE.read(env),
            ttl_seconds=IDEMPOTENCY_TTL_SECONDS.read(env),
            in_progress_seconds=in_progress,
        )


def sdk_debug_logs(environ: Mapping[str, str] | None = None) -> bool:
    """Whether AWS_SDK_DEBUG_LOGS opts in to the AWS SDK's DEBUG logs, which hold secrets."""
    return AWS_SDK_DEBUG_LOGS.read(os.environ if environ is None else environ)


# Read by the Functions host and botocore, not by the app: local.settings.json's other values.
HOST_LOCAL_VALUES = {
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}
EMULATOR_KEYS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def settings_files() -> dict[str, str]:
    """The two settings files, as this table makes them: relative path -> text."""
    app_settings = [
        {"name": setting.name, "value": setting.default_text}
        for setting in TABLE
        if setting.source == "app-settings.json"
    ]
    local_values = {s.name: s.local_text for s in TABLE if s.local_text is not None}
    local_settings = {"IsEncrypted": False, "Values": {**HOST_LOCAL_VALUES, **local_values, **EMULATOR_KEYS}}
    # One entry a line: the file reads as a table, and a diff shows one setting.
    entries = ",\n".join(f"  {json.dumps(entry)}" for entry in app_settings)
    return {
        "infra/azure/app-settings.json": f"[\n{entries}\n]\n",
        LOCAL_SETTINGS_FILE: json.dumps(local_settings, indent=2) + "\n",
    }


def local_settings_values(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``Values`` of a ``local.settings.json``, as strings (what ``func start`` exports)."""
    from pathlib import Path  # local runs only: not when the host indexes the app

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
    from pathlib import Path  # local runs only: not when the host indexes the app

    if option == "":
        return None
    if option is None:
        default = Path(LOCAL_SETTINGS_FILE)
        return default if default.is_file() else None
    if not Path(option).is_file():
        raise SettingsError(f"settings file {option} not found")
    return Path(option)


def fill_environment(
    path: str | os.PathLike[str] | None,
    overrides: Mapping[str, str | None] | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> MutableMapping[str, str]:
    """The environment of a local command, filled the way ``func start`` fills it.

    The values of ``local.settings.json`` at ``path`` (when given) fill the environment
    where it has no value yet, so the environment wins, as under ``func start``; then
    ``overrides`` win over both (``None`` removes a variable). The environment is
    changed in place because botocore, azure-identity and the functions read it themselves.
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
    return env


def use_local_settings(
    path: str | os.PathLike[str] | None,
    overrides: Mapping[str, str | None] | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> Settings:
    """Settings for a local command, read the way ``func start`` reads them (``fill_environment``)."""
    return Settings.from_env(fill_environment(path, overrides, environ))
