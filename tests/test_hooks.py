"""Bad answers are refused before generation, by name and rule, and leave nothing behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException

from .conftest import BIN, COOKIECUTTER_JSON, TEMPLATE_DIR, bake, clean_env, load_hook, run

pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")

# (field, bad answer, words the refusal must contain)
BAD_ANSWERS = [
    ("project_slug", "My Project", "lowercase"),
    ("package_name", "my-app", "identifier"),
    ("package_name", "class", "keyword"),
    ("package_name", "json", "standard library"),
    ("package_name", "boto3", "dependency"),
    ("package_name", "Orders", "identifier"),
    ("aws_region", "us-east", "region"),
    ("aws_region", "US-EAST-1", "region"),
    ("input_queue_name", "bad name", "letters, digits"),
    ("input_queue_name", "q" * 81, "1-80"),
    ("output_queue_name", "a.fifo.fifo", "letters, digits"),
    ("output_queue_name", ".fifo", "letters, digits"),
    ("dlq_name", "plain-dlq.fifo", "both be FIFO"),
    ("aws_role_arn", "arn:aws:iam::12345:role/x", "role ARN"),
    ("aws_role_arn", "arn:aws:s3:::bucket", "role ARN"),
    ("max_receive_count", "0", "1 to 1000"),
    ("max_receive_count", "1001", "1 to 1000"),
    ("max_receive_count", "three", "1 to 1000"),
    ("delivery_latency", "0.5", "The nearest answer that works is 1"),
    # Checked, not free text: written into files as typed, so a plain number only.
    ("delivery_latency", "60\n", "must be a number of seconds"),
    ("delivery_latency", "6_0", "must be a number of seconds"),
    ("instance_memory_mb", " 2048", "must be one of"),
    ("managed_identity_client_id", "not-a-guid", "GUID"),
    ("token_audience", "api://with space", "without spaces"),
    ("author_email", "nobody", "email"),
    ("python_version", "3.9", "support for Python 3.9 ended"),
    ("python_version", "3.10", "support for Python 3.10 ended in October 2026"),
    ("python_version", "3.8", "one of"),
    ("azure_identity", "shared", "one of"),
    ("existing_identity_id", "/subscriptions/x/identity", "only for azure_identity=existing_user_assigned"),
    ("aws_auth", "static_keys", "one of"),
    ("http_auth_level", "admin", "one of"),
    # Issue 27: what feeds the queue, and how large its messages may be.
    ("message_source", "kinesis", "one of"),
    ("max_message_bytes", "1023", "1024 to 1048576"),
    ("max_message_bytes", "1048577", "1024 to 1048576"),
    ("max_message_bytes", "256k", "1024 to 1048576"),
    # Issue 15: answers that once baked invalid JSON or Python, or rewrote the trust policy.
    ("max_receive_count", "5\n", "1 to 1000"),
    ("max_receive_count", "\uff15", "1 to 1000"),  # full-width 5: str.isdigit() says yes
    ("max_receive_count", " 5", "1 to 1000"),
    ("token_audience", 'api://app", "sts:ExternalId": "x', "without spaces or quotes"),
    ("token_audience", "api://app-${AWS::AccountId}", "App ID URI"),
    ("token_audience", "urn:app", "App ID URI"),
    ("token_audience", "api://app\n", "App ID URI"),
]
# Issue 24: free text is one printable line (each file gets it through its language's filter).
ONE_LINE_ANSWERS = [
    ("project_name", "Two\nLines", "one line of printable text"),
    ("description", "ends a line\r\n# and starts a heading", "one line of printable text"),
    ("author_name", "Ada\x1b[31m", "one line of printable text"),
    ("author_email", "ada@example.com\x7f", "one line of printable text"),
]
BAD_ANSWERS += ONE_LINE_ANSWERS


def good_answers() -> dict[str, str]:
    """The template defaults, rendered the way cookiecutter renders them."""
    return {
        "project_slug": "sqs-functions-app",
        "package_name": "sqs_functions_app",
        "author_email": "you@example.com",
        "input_queue_name": "sqs-functions-app-input",
        "output_queue_name": "sqs-functions-app-output",
        "dlq_name": "sqs-functions-app-input-dlq",
        "delivery_latency": "60",
        **{
            k: v if isinstance(v, str) else v[0]
            for k, v in COOKIECUTTER_JSON.items()
            if not k.startswith("_") and "{" not in str(v)
        },
    }


def test_the_defaults_pass_validation() -> None:
    assert pre_gen.validate(good_answers()) == []


@pytest.mark.parametrize(("field", "value", "words"), BAD_ANSWERS)
def test_validate_refuses_each_bad_answer_by_field(field: str, value: str, words: str) -> None:
    answers = {**good_answers(), field: value}
    errors = pre_gen.validate(answers)
    assert [e.field for e in errors] == [field]
    assert words in errors[0].rule


# One answer per kind of rule, and every answer that once slipped past the hook (issue 15: stray
# whitespace, full-width digits, quotes and substitutions in the audience).
REFUSED_BAKES = (
    [BAD_ANSWERS[i] for i in (1, 4, 6, 9, 12, 13, 16, 18, 19, 26)]
    + [a for a in BAD_ANSWERS if a[0] == "max_message_bytes"][::2]  # a choice cookiecutter refuses itself
    + BAD_ANSWERS[-11:]
)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    REFUSED_BAKES,
    ids=[f"{field}={value!r}"[:40] for field, value, _ in REFUSED_BAKES],
)
def test_a_refused_bake_names_the_field_and_leaves_no_directory(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], field: str, value: str, words: str
) -> None:
    with pytest.raises(FailedHookException):
        bake(tmp_path, {field: value})
    err = capfd.readouterr().err
    assert f"error: {field}: " in err
    assert words in err
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    "audience",
    [
        "api://AzureADTokenExchange",
        "api://my-app-id",
        "api://11111111-2222-3333-4444-555555555555",
        "https://contoso.onmicrosoft.com/sqs-app",
        "11111111-2222-3333-4444-555555555555",
    ],
)
def test_documented_audiences_are_accepted(audience: str) -> None:
    assert pre_gen.validate({**good_answers(), "token_audience": audience}) == []


@pytest.mark.parametrize("slug", ["a/b", "a/b/c", "../escape", "a\\b"])
def test_a_slug_with_a_path_separator_leaves_nothing_behind(tmp_path: Path, slug: str) -> None:
    """cookiecutter makes the project folder before the pre-gen hook runs: ``a/b`` would leave ``a``. The
    slug is refused while the answers are rendered (local_extensions.py), before any folder exists."""
    with pytest.raises(FailedHookException, match=r"error: project_slug: .* must name one folder"):
        bake(tmp_path, {"project_slug": slug})
    assert list((tmp_path / "out").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cookiecutter-config.yaml", "out"]


def test_a_slug_with_a_separator_is_refused_on_the_command_line_without_a_traceback(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replay'}\n", encoding="utf-8")
    result = run(
        [
            *(str(BIN / "cookiecutter"), "--no-input", "--config-file", str(config)),
            *(str(TEMPLATE_DIR), "-o", str(out), "project_slug=a/b"),
        ],
        tmp_path,
        clean_env(),
    )
    assert result.returncode == 1
    assert "error: project_slug: 'a/b' must name one folder" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert list(out.iterdir()) == []


def test_linux_consumption_refuses_python_newer_than_3_12() -> None:
    errors = pre_gen.validate({**good_answers(), "hosting_plan": "consumption", "python_version": "3.13"})
    assert [e.field for e in errors] == ["python_version"]
    assert "Linux Consumption" in errors[0].rule
    assert pre_gen.validate({**good_answers(), "hosting_plan": "consumption", "python_version": "3.12"}) == []
    assert (
        pre_gen.validate({**good_answers(), "hosting_plan": "flex_consumption", "python_version": "3.13"})
        == []
    )


@pytest.mark.parametrize(
    ("answers", "field", "words"),
    [
        ({"azure_identity": "existing_user_assigned"}, "existing_identity_id", "resource ID"),
        (
            {"azure_identity": "existing_user_assigned", "existing_identity_id": "/subscriptions/nope"},
            "existing_identity_id",
            "resource ID",
        ),
        (
            {
                "azure_identity": "system_assigned",
                "managed_identity_client_id": "11111111-2222-3333-4444-555555555555",
            },
            "managed_identity_client_id",
            "system_assigned",
        ),
    ],
)
def test_the_identity_answers_must_agree(answers: dict[str, str], field: str, words: str) -> None:
    errors = pre_gen.validate({**good_answers(), **answers})
    assert [e.field for e in errors] == [field]
    assert words in errors[0].rule


def test_s3_cannot_feed_a_fifo_queue_and_the_other_sources_can() -> None:
    fifo = {"input_queue_name": "orders.fifo", "dlq_name": "orders-dlq.fifo"}
    errors = pre_gen.validate({**good_answers(), **fifo, "message_source": "s3"})
    assert [e.field for e in errors] == ["message_source"]
    assert "standard queues only" in errors[0].rule
    for source in ("http", "sns", "eventbridge"):
        assert pre_gen.validate({**good_answers(), **fifo, "message_source": source}) == []


def test_an_existing_identity_named_by_its_resource_id_is_accepted() -> None:
    identity = (
        "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-1"
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity"
    )
    answers = {"azure_identity": "existing_user_assigned", "existing_identity_id": identity}
    assert pre_gen.validate({**good_answers(), **answers}) == []


def test_fifo_input_queue_gets_a_fifo_dlq_by_default(tmp_path: Path) -> None:
    out = bake(tmp_path, {"input_queue_name": "orders.fifo"})
    settings = json.loads((out / "sqs-functions-app" / "local.settings.json").read_text(encoding="utf-8"))
    assert settings["Values"]["SQS_DLQ"] == "orders-dlq.fifo"


def test_post_hook_lists_exactly_the_unchosen_parts() -> None:
    answers: dict[str, Any] = {
        "package_name": "app",
        "include_localstack": "no",
        "ci": "none",
        "aws_auth": "default_chain",
    }
    assert [str(p) for p in post_gen.unchosen_paths(answers)] == [
        "localstack",
        "tests/test_localstack.py",
        ".github",
        "deploy/github_environment.py",
        "tests/test_deploy_github_environment.py",
        "app/engine/oidc_credentials.py",
        "tests/oidc",
    ]
    chosen = {**answers, "include_localstack": "yes", "ci": "github", "aws_auth": "oidc_managed_identity"}
    assert [str(p) for p in post_gen.unchosen_paths(chosen)] == ["tests/test_deploy_aws_stack.py"]


def test_tool_caches_left_in_the_template_folder_stay_out_of_the_app(tmp_path: Path) -> None:
    """cookiecutter copies what git ignores too: caches a contributor's tools left in a checkout."""
    template = tmp_path / "template"
    shutil.copytree(
        TEMPLATE_DIR,
        template,
        ignore=shutil.ignore_patterns(".git", ".venv", ".cache", *post_gen.TOOL_CACHES),
    )
    project = template / "{{cookiecutter.project_slug}}"
    for cache in (
        project / ".ruff_cache",
        project / "tests" / "__pycache__",
        project / ".mypy_cache" / "3.11",
    ):
        cache.mkdir(parents=True)
        (cache / "stale.bin").write_bytes(b"\x00\xff")
    (tmp_path / "out").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"cookiecutters_dir: {tmp_path / 'cc'}\nreplay_dir: {tmp_path / 'replay'}\n", encoding="utf-8"
    )
    from cookiecutter.main import cookiecutter

    app = Path(
        cookiecutter(str(template), no_input=True, output_dir=str(tmp_path / "out"), config_file=str(config))
    )
    assert (app / "tests").is_dir()
    left = [p.relative_to(app) for name in post_gen.TOOL_CACHES for p in app.rglob(name)]
    assert left == []
