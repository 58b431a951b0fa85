"""The README and docs/ quote only what the code says: error names, settings and log phrases.

What counts, in the README and every docs/*.md (text between backticks):
- an error name: a CamelCase word ending in Error, Exception, Refused, Unavailable, Failed or
  InProgress, or any CamelCase word followed by ":" (how a logged exception starts). It must be a
  class of the app's code, or one of ``ERRORS_FROM_ELSEWHERE``;
- a setting: a SCREAMING_CASE name with an underscore (``NAME`` or ``NAME=value``). It must be in the
  settings table, or be written in a file of the app that is not documentation (read by the host,
  an SDK, the tests or a tool);
- a log phrase: the first column of the README's Troubleshooting table. Split at placeholders
  (``...``, ``<...>``) and at the names above, each piece of text must be in a string of the app's
  Python code, or begin with the fixed start of one (the rest is the value it formats in); unless the
  message is another program's (``MESSAGES_FROM_ELSEWHERE``).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.engine.settings import SETTINGS_HELP

from .project_files import kept_files

PROJECT = Path(__file__).parents[1]
DOCS = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
QUOTED = re.compile(r"`([^`\n]+)`")
CAMEL = r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+"
ERROR_NAME = re.compile(
    rf"\b({CAMEL})(?=:)|\b({CAMEL}(?:Error|Exception|Refused|Unavailable|Failed|InProgress))\b"
)
SETTING = re.compile(r"^([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=.*)?$")
PLACEHOLDER = re.compile(r"\.\.\.|<[^>]*>")
NAME_IN_PHRASE = re.compile(rf"\b(?:{CAMEL}|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b")
# Exceptions of libraries that the docs name as they reach the logs.
ERRORS_FROM_ELSEWHERE = {
    "ValidationError": "pydantic's, and an STS error code",
}
# Settings of other programs that the docs advise on.
SETTINGS_FROM_ELSEWHERE = {
    "SQS_DISABLE_CLOUDWATCH_METRICS": "LocalStack's",
    "OTEL_METRIC_EXPORT_INTERVAL": "the OpenTelemetry SDK's",
    "OTEL_TRACES_SAMPLER": "the OpenTelemetry SDK's",
    "OTEL_TRACES_SAMPLER_ARG": "the OpenTelemetry SDK's",
    "OTEL_EXPORTER_OTLP_HEADERS": "the OpenTelemetry SDK's",
    "PYTHON_ENABLE_OPENTELEMETRY": "the Python worker's",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "the Python worker's",
}
# Messages of other programs, quoted as they print them.
MESSAGES_FROM_ELSEWHERE = {
    "AWS.SimpleQueueService.NonExistentQueue": "SQS's error code",
    'Could not connect to the endpoint URL: "http://localhost:4566/"': "botocore",
    "The API version ... is not supported by Azurite": "Azurite",
    "required variable LOCALSTACK_AUTH_TOKEN is missing a value": "docker compose",
    "docker compose ... up --wait": "docker compose",
    "'%SQS_SCALE_OUT_QUEUE%' does not resolve to a value": "the Functions host",
    "oldest_message_age_seconds: null": "the stats command's JSON field",
}
SOURCE_SUFFIXES = {".py", ".json", ".yaml", ".yml", ".bicep", ".sh", ".ps1", ".toml", ".txt"}


def quoted(path: Path) -> list[str]:
    return QUOTED.findall(path.read_text(encoding="utf-8"))


@cache
def project_files() -> list[Path]:
    """What git keeps of the project: never the venv, whose vendored files are not the app's."""
    return kept_files(PROJECT)


@cache
def python_files() -> list[Path]:
    return [p for p in project_files() if p.suffix == ".py" and "tests" not in p.relative_to(PROJECT).parts]


@cache
def defined_classes() -> set[str]:
    return {
        node.name
        for path in python_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    }


@cache
def code_strings() -> list[str]:
    """The text of every string in the app's code; an f-string gives its fixed parts."""
    strings = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                strings.append(node.value)
    return strings


@cache
def source_text() -> str:
    """Every file of the app but its documentation: what the host, SDKs, tests and tools read."""
    return "\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for p in project_files()
        if p.suffix in SOURCE_SUFFIXES
    )


def troubleshooting_symptoms() -> list[str]:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Troubleshooting\n", 1)[1].split("\n## ", 1)[0]
    rows = [
        line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| symptom")
    ]
    return [quote for row in rows for quote in QUOTED.findall(row.split(" | ", 1)[0])]


def unknown_text(phrase: str) -> list[str]:
    """The pieces of a quoted log phrase that no string of the code holds."""
    pieces = [p for part in PLACEHOLDER.split(phrase) for p in NAME_IN_PHRASE.split(part)]
    unknown = []
    for piece in (p.strip(" :;,.'\"()") for p in pieces):
        if len(piece) < 4:
            continue
        held = any(piece in text for text in code_strings())
        begins = any(len(text.strip()) >= 8 and piece.startswith(text.strip()) for text in code_strings())
        if not held and not begins:
            unknown.append(piece)
    return unknown


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_error_name_quoted_is_a_class_of_the_code(path: Path) -> None:
    names = {
        match.group(1) or match.group(2) for quote in quoted(path) for match in ERROR_NAME.finditer(quote)
    }
    unknown = names - defined_classes() - set(ERRORS_FROM_ELSEWHERE)
    assert unknown == set()


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_setting_quoted_exists(path: Path) -> None:
    names = {match.group(1) for quote in quoted(path) if (match := SETTING.match(quote))}
    known = set(SETTINGS_HELP) | set(SETTINGS_FROM_ELSEWHERE)
    unknown = {name for name in names - known if not re.search(rf"\b{name}\b", source_text())}
    assert unknown == set()


def test_every_log_phrase_of_the_troubleshooting_table_is_in_the_code() -> None:
    symptoms = troubleshooting_symptoms()
    assert len(symptoms) >= 5, "the Troubleshooting table was not found"
    unknown = {
        symptom: pieces
        for symptom in symptoms
        if symptom not in MESSAGES_FROM_ELSEWHERE and (pieces := unknown_text(symptom))
    }
    assert unknown == {}


def test_the_readme_is_short_and_starts_where_the_owner_starts() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300, "depth belongs in docs/"
    sections = re.findall(r"^## (.+)$", readme, flags=re.MULTILINE)
    expected = ["Quick start", "Your handler", "Configuration", "Run locally", "Deploy", "Operate"]
    assert sections == [*expected, "Troubleshooting"]


def test_the_checks_catch_what_drifted() -> None:
    # The two drifts the docs once had: a log line quoting an alias, a message the code no longer says.
    [match] = ERROR_NAME.finditer("fan-out failed, draining on alone: TokenQueueUnavailable")
    assert match.group(2) == "TokenQueueUnavailable" not in defined_classes()
    assert unknown_text("no table storage for idempotency") == ["no table storage for idempotency"]
    assert unknown_text("no storage account for idempotency") == []
