"""Refuse bad cookiecutter answers before anything is generated.

Cookiecutter renders this file with Jinja, then runs it. The answers arrive as
one JSON document inside a raw '''-string; ``tojson`` escapes every ``'`` as
``\u0027``, so no answer can close that string and inject code.
The validators are plain functions so the template's tests can call them. The delivery latency is
judged by the app's own rule (engine/delivery_plan.py), the one the templates and the app's ``costs``
command use.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
# Versions Azure Functions no longer runs: refused with the reason, not just "not a choice".
RETIRED_PYTHON_VERSIONS = {
    "3.10": "Azure Functions support for Python 3.10 ended in October 2026",
    "3.9": "Azure Functions support for Python 3.9 ended in October 2025",
}
HOSTING_PLANS = ("flex_consumption", "premium", "consumption")
AZURE_IDENTITIES = ("user_assigned", "existing_user_assigned", "system_assigned")
# Linux Consumption gets no Python newer than 3.12; Flex Consumption and Premium do.
LINUX_CONSUMPTION_MAX_PYTHON = (3, 12)
AWS_AUTH_MODES = ("oidc_managed_identity", "default_chain")
HTTP_AUTH_LEVELS = ("function", "anonymous")
YES_NO = ("yes", "no")
CI_CHOICES = ("github", "none")

# Modules a generated app imports or its tests and tools load; a package of the
# same name would shadow them.
DEPENDENCY_MODULES = frozenset(
    {
        "azure",
        "boto3",
        "botocore",
        "moto",
        "pytest",
        "mypy",
        "ruff",
        "function_app",
        "tests",
        "flask",
        "werkzeug",
        "jinja2",
        "requests",
        "urllib3",
        "s3transfer",
        "jmespath",
        "msal",
        "cryptography",
        "dateutil",
        "yaml",
    }
)

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
USER_ASSIGNED_IDENTITY_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[\w.()-]{1,90}"
    r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[A-Za-z0-9][\w-]{2,127}$",
    re.IGNORECASE,
)
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
ASCII_DIGITS = re.compile(r"[0-9]+")
# The token audience: a GUID (an application's client ID) or an api:// or https:// URI of URL-safe
# characters, at most 255 long (an IAM OIDC provider's client ID limit). It is pasted into the role's trust
# policy (JSON inside !Sub), so no quote, backslash, '$', '{' or space can appear. infra/aws/template.yaml
# holds the same pattern as the TokenAudience parameter's AllowedPattern (a template test keeps them equal).
TOKEN_AUDIENCE = re.compile(
    r"^([0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}|(api|https)://[A-Za-z0-9][A-Za-z0-9._~:/-]{0,240})$"
)

SQS_QUEUE_NAME_MAX = 80
MAX_RECEIVE_COUNT_RANGE = (1, 1000)
MESSAGE_SOURCES = ("http", "sns", "s3", "eventbridge")
# SQS's MaximumMessageSize range: 1 KiB to 1 MiB.
MAX_MESSAGE_BYTES_RANGE = (1024, 1_048_576)


class AnswerError(ValueError):
    """One refused answer: the field and the rule it broke."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


def check_package_name(value: str, field: str = "package_name") -> None:
    if not IDENTIFIER.match(value):
        raise AnswerError(
            field,
            f"{value!r} must be a lowercase Python identifier "
            "(letters, digits, underscores; not starting with a digit)",
        )
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        raise AnswerError(field, f"{value!r} is a Python keyword")
    if value in sys.stdlib_module_names:
        raise AnswerError(field, f"{value!r} would shadow the standard library module {value!r}")
    if value in DEPENDENCY_MODULES:
        raise AnswerError(field, f"{value!r} would shadow the dependency module {value!r}")


def check_project_slug(value: str) -> None:
    if not SLUG.match(value):
        raise AnswerError(
            "project_slug",
            f"{value!r} must be lowercase letters, digits, '-' or '_', starting with a letter or digit",
        )


def check_region(value: str) -> None:
    if not REGION.match(value):
        raise AnswerError("aws_region", f"{value!r} is not an AWS region name such as 'us-east-1'")


def check_queue_name(value: str, field: str) -> None:
    stem = value.removesuffix(".fifo")
    if not 1 <= len(value) <= SQS_QUEUE_NAME_MAX:
        raise AnswerError(
            field, f"{value!r} must be 1-{SQS_QUEUE_NAME_MAX} characters long, '.fifo' included"
        )
    if not stem or not QUEUE_NAME.match(stem):
        raise AnswerError(
            field,
            f"{value!r} may hold only letters, digits, '-' and '_' (plus a final '.fifo' for FIFO)",
        )


def check_dlq_matches_input(input_queue: str, dlq: str) -> None:
    # SQS refuses a redrive policy between a FIFO queue and a standard one.
    if input_queue.endswith(".fifo") != dlq.endswith(".fifo"):
        raise AnswerError(
            "dlq_name",
            f"{dlq!r} and input queue {input_queue!r} must both be FIFO ('.fifo') or both standard",
        )
    if input_queue == dlq:
        raise AnswerError("dlq_name", "the DLQ must be a different queue from the input queue")


def check_python_version(value: str) -> None:
    if value in RETIRED_PYTHON_VERSIONS:
        raise AnswerError(
            "python_version",
            f"{value} is not offered: {RETIRED_PYTHON_VERSIONS[value]}; "
            f"choose one of {', '.join(PYTHON_VERSIONS)}",
        )
    check_choice("python_version", PYTHON_VERSIONS)(value)


def check_identity(azure_identity: str, existing_identity_id: str, client_id: str) -> None:
    """The identity answers agree: an existing identity is named, a system-assigned one has no client ID."""
    named = USER_ASSIGNED_IDENTITY_ID.match(existing_identity_id)
    if azure_identity == "existing_user_assigned" and not named:
        raise AnswerError(
            "existing_identity_id",
            f"{existing_identity_id!r} must be a user-assigned identity's resource ID, "
            "'/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/<name>' (az identity show --query id -o tsv)",
        )
    if azure_identity != "existing_user_assigned" and existing_identity_id:
        raise AnswerError(
            "existing_identity_id", f"is only for azure_identity=existing_user_assigned, not {azure_identity}"
        )
    if azure_identity == "system_assigned" and client_id:
        raise AnswerError(
            "managed_identity_client_id",
            "a client ID names a user-assigned identity; leave it empty with azure_identity=system_assigned",
        )


def check_python_on_plan(python_version: str, hosting_plan: str) -> None:
    version = tuple(int(part) for part in python_version.split("."))
    if hosting_plan == "consumption" and version > LINUX_CONSUMPTION_MAX_PYTHON:
        highest = ".".join(map(str, LINUX_CONSUMPTION_MAX_PYTHON))
        raise AnswerError(
            "python_version",
            f"{python_version} does not run on the Linux Consumption plan (Python {highest} at most); "
            "choose flex_consumption or premium, or an older Python",
        )


def check_role_arn(value: str) -> None:
    if value and not ROLE_ARN.match(value):
        raise AnswerError(
            "aws_role_arn",
            f"{value!r} is not an IAM role ARN such as 'arn:aws:iam::123456789012:role/my-role' "
            "(leave it empty to set AWS_OIDC_ROLE_ARN at deploy time)",
        )


def check_max_receive_count(value: str) -> None:
    low, high = MAX_RECEIVE_COUNT_RANGE
    # ASCII digits only: str.isdigit() also takes full-width digits and int() strips '5\n'.
    if not ASCII_DIGITS.fullmatch(value) or not low <= int(value) <= high:
        raise AnswerError("max_receive_count", f"{value!r} must be a whole number from {low} to {high}")


def check_max_message_bytes(value: str) -> None:
    low, high = MAX_MESSAGE_BYTES_RANGE
    if not ASCII_DIGITS.fullmatch(value) or not low <= int(value) <= high:
        raise AnswerError(
            "max_message_bytes", f"{value!r} must be a whole number of bytes from {low} to {high} (1 MiB)"
        )


def check_source_fits_queue(message_source: str, input_queue: str) -> None:
    # S3 event notifications go to standard queues only.
    if message_source == "s3" and input_queue.endswith(".fifo"):
        raise AnswerError(
            "message_source",
            f"s3 cannot feed FIFO queue {input_queue!r}: S3 notifies standard queues only; "
            "choose sns or eventbridge, or a standard input queue",
        )


def delivery_rule(template: str | None = None) -> ModuleType:
    """The template's engine/delivery_plan.py, as delivery_extension.py loads it for the templates."""
    # cookiecutter and cruft run a rendered copy of this file from a temporary folder, and main() names the
    # template's folder; the template's tests load this file where it is.
    folder = template or str(Path(__file__).resolve().parents[1])
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import delivery_extension

    rule: ModuleType = delivery_extension.delivery_rule()
    return rule


def check_delivery(answers: Mapping[str, object], template: str | None = None) -> None:
    """delivery_latency and instance_memory_mb: a configuration of the plan must meet them."""
    rule = delivery_rule(template)
    try:
        rule.derive(
            str(answers["hosting_plan"]),
            str(answers.get("delivery_latency", "")),
            str(answers.get("instance_memory_mb", "")),
        )
    except rule.Refused as refused:
        raise AnswerError(refused.field, refused.rule) from None


def check_client_id(value: str) -> None:
    if value and not GUID.match(value):
        raise AnswerError(
            "managed_identity_client_id", f"{value!r} must be a GUID, or empty for system-assigned"
        )


def check_audience(value: str) -> None:
    if not TOKEN_AUDIENCE.fullmatch(value):
        raise AnswerError(
            "token_audience",
            f"{value!r} must be an App ID URI (api://... or https://..., letters, digits and . _ ~ : / -, "
            "without spaces or quotes, up to 248 characters) or an application (client) GUID",
        )


def check_email(value: str) -> None:
    if not EMAIL.match(value):
        raise AnswerError("author_email", f"{value!r} is not an email address")
    check_one_line(value, "author_email")


def check_one_line(value: str, field: str) -> None:
    """Free text: one line of printable characters. Each file gets it through its language's filter
    (language_filters.py); a line break or a control character has no place in a title or a docstring."""
    unprintable = [c for c in value if not c.isprintable()]
    if unprintable:
        raise AnswerError(field, f"{value!r} must be one line of printable text, without {unprintable[0]!r}")


def check_choice(field: str, choices: tuple[str, ...]) -> Callable[[str], None]:
    def check(value: str) -> None:
        if value not in choices:
            raise AnswerError(field, f"{value!r} must be one of {', '.join(choices)}")

    return check


def validate(answers: Mapping[str, str], template: str | None = None) -> list[AnswerError]:
    """Every refused answer, in question order (``template``: the template's folder)."""
    checks: list[tuple[str, Callable[[str], None]]] = [
        ("project_name", lambda v: check_one_line(v, "project_name")),
        ("project_slug", check_project_slug),
        ("package_name", check_package_name),
        ("description", lambda v: check_one_line(v, "description")),
        ("author_name", lambda v: check_one_line(v, "author_name")),
        ("author_email", check_email),
        ("python_version", check_python_version),
        ("hosting_plan", check_choice("hosting_plan", HOSTING_PLANS)),
        ("azure_identity", check_choice("azure_identity", AZURE_IDENTITIES)),
        ("aws_region", check_region),
        ("input_queue_name", lambda v: check_queue_name(v, "input_queue_name")),
        ("output_queue_name", lambda v: check_queue_name(v, "output_queue_name")),
        ("dlq_name", lambda v: check_queue_name(v, "dlq_name")),
        ("max_receive_count", check_max_receive_count),
        ("message_source", check_choice("message_source", MESSAGE_SOURCES)),
        ("max_message_bytes", check_max_message_bytes),
        ("aws_auth", check_choice("aws_auth", AWS_AUTH_MODES)),
        ("aws_role_arn", check_role_arn),
        ("token_audience", check_audience),
        ("managed_identity_client_id", check_client_id),
        ("http_auth_level", check_choice("http_auth_level", HTTP_AUTH_LEVELS)),
        ("include_localstack", check_choice("include_localstack", YES_NO)),
        ("ci", check_choice("ci", CI_CHOICES)),
    ]
    errors: list[AnswerError] = []
    for field, check in checks:
        try:
            check(str(answers.get(field, "")))
        except AnswerError as error:
            errors.append(error)
    if not any(e.field in ("python_version", "hosting_plan") for e in errors):
        try:
            check_python_on_plan(str(answers["python_version"]), str(answers["hosting_plan"]))
        except AnswerError as error:
            errors.append(error)
    if not any(e.field == "hosting_plan" for e in errors):
        try:
            check_delivery(answers, template)
        except AnswerError as error:
            errors.append(error)
    identity_fields = ("azure_identity", "existing_identity_id", "managed_identity_client_id")
    if not any(e.field in identity_fields for e in errors):
        try:
            check_identity(*(str(answers.get(field, "")) for field in identity_fields))
        except AnswerError as error:
            errors.append(error)
    if not any(e.field in ("input_queue_name", "dlq_name") for e in errors):
        try:
            check_dlq_matches_input(str(answers["input_queue_name"]), str(answers["dlq_name"]))
        except AnswerError as error:
            errors.append(error)
    if not any(e.field in ("message_source", "input_queue_name") for e in errors):
        try:
            check_source_fits_queue(str(answers["message_source"]), str(answers["input_queue_name"]))
        except AnswerError as error:
            errors.append(error)
    return errors


def main() -> int:
    answers = json.loads(r'''{{ cookiecutter | tojson }}''')  # fmt: skip
    template = json.loads(r'''{{ cookiecutter | template_folder | tojson }}''')  # fmt: skip
    errors = validate(answers, template)
    for error in errors:
        print(f"error: {error.field}: {error.rule}", file=sys.stderr)
    if errors:
        print("Nothing was generated. Fix the answers above and run cookiecutter again.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
