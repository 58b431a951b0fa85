"""Every option combination bakes into an app that is complete, clean and indexes as the host sees it."""

from __future__ import annotations

import json
import re
import sys
import tomllib

import pytest

from .conftest import BIN, COOKIECUTTER_JSON, MATRIX, Baked, clean_env, lint_env, load_hook, run

INDEX_SCRIPT = """
import json, sys
import azure.functions as func
import function_app
registers = [v for v in vars(function_app).values() if isinstance(v, func.FunctionRegister)]
print(json.dumps({
    "registers": len(registers),
    "functions": {f.get_function_name(): [json.loads(b) for b in f.get_raw_bindings()]
                  for f in registers[0].get_functions()},
}))
"""


def test_matrix_covers_every_choice() -> None:
    # Questions only: "_extensions" is a list too, of the template's Jinja extensions.
    choices = {k: v for k, v in COOKIECUTTER_JSON.items() if isinstance(v, list) and not k.startswith("_")}
    # A free-text answer so that the hook, not cookiecutter, refuses a retired version and says why.
    choices["python_version"] = list(load_hook("pre_gen_project").PYTHON_VERSIONS)
    missing = [
        f"{key}={value}"
        for key, values in choices.items()
        for value in values
        if not any(c.answer(key) == value for c in MATRIX)
    ]
    assert missing == []


# GitHub Actions expressions, ${{ ... }}, are meant to stay in the workflows.
GITHUB_EXPRESSION = re.compile(r"\$\{\{[^}]*\}\}")


def test_nothing_is_left_unrendered(baked: Baked) -> None:
    leftovers = [
        str(p.relative_to(baked.path))
        for p in baked.files()
        for text in [GITHUB_EXPRESSION.sub("", p.read_text(encoding="utf-8"))]
        if "{{" in text or "{%" in text or "{{" in str(p)
    ]
    assert leftovers == []


def test_every_json_file_is_valid(baked: Baked) -> None:
    for path in (p for p in baked.files() if p.suffix == ".json"):
        json.loads(path.read_text(encoding="utf-8"))


def test_unchosen_parts_are_removed_and_chosen_ones_kept(baked: Baked) -> None:
    answer = baked.combination.answer
    oidc = answer("aws_auth") == "oidc_managed_identity"
    assert (baked.path / ".github" / "workflows" / "ci.yml").exists() == (answer("ci") == "github")
    assert (baked.path / baked.package / "engine" / "oidc_credentials.py").exists() == oidc
    localstack = answer("include_localstack") == "yes"
    assert (baked.path / "localstack" / "compose.yaml").exists() == localstack
    assert (baked.path / "tests" / "test_localstack.py").exists() == localstack
    requirements = (baked.path / "requirements.txt").read_text(encoding="utf-8")
    # Every bake: the idempotency table is reached with the managed identity in Azure.
    assert "azure-storage-queue" in requirements
    assert "azure-identity" in requirements
    if not oidc:
        code = "\n".join(
            p.read_text(encoding="utf-8") for p in baked.files(baked.package) if p.suffix == ".py"
        )
        assert "oidc" not in code.lower()


def test_answers_are_replayed_without_machine_paths(baked: Baked) -> None:
    replay = json.loads((baked.path / ".cookiecutter.json").read_text(encoding="utf-8"))["cookiecutter"]
    for key, value in baked.combination.answers.items():
        assert replay[key] == value
    assert "_output_dir" not in replay
    assert "_repo_dir" not in replay


def test_host_json_matches_the_hosting_plan(baked: Baked) -> None:
    host = json.loads((baked.path / "host.json").read_text(encoding="utf-8"))
    timeouts = {"consumption": "00:10:00", "flex_consumption": "00:30:00", "premium": "00:30:00"}
    assert host["version"] == "2.0"
    assert host["functionTimeout"] == timeouts[baked.combination.answer("hosting_plan")]
    assert host["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    }
    # One drain token per instance at a time, so the scale controller spreads K tokens over K instances.
    queues = host["extensions"]["queues"]
    assert (queues["batchSize"], queues["newBatchThreshold"], queues["maxDequeueCount"]) == (1, 0, 1)
    assert queues["messageEncoding"] == "base64"  # what the app's token writer encodes


def test_pyproject_targets_the_chosen_python(baked: Baked) -> None:
    pyproject = tomllib.loads((baked.path / "pyproject.toml").read_text(encoding="utf-8"))
    version = baked.combination.answer("python_version")
    assert pyproject["tool"]["mypy"]["python_version"] == version
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")
    assert pyproject["project"]["requires-python"] == f">={version}"


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_generated_code_passes_the_linters(baked: Baked, command: list[str]) -> None:
    result = run([str(BIN / command[0]), *command[1:]], baked.path, lint_env(baked))
    assert result.returncode == 0, result.stdout + result.stderr


def test_function_app_indexes_into_the_four_functions(baked: Baked) -> None:
    result = run([sys.executable, "-c", INDEX_SCRIPT], baked.path, clean_env())
    assert result.returncode == 0, result.stderr
    index = json.loads(result.stdout)
    assert index["registers"] == 1
    functions = index["functions"]
    assert set(functions) == {
        "drain_input_queue_on_timer",
        "drain_input_queue_on_token",
        "send_message",
        "send_message_batch",
    }

    [timer] = functions["drain_input_queue_on_timer"]
    assert (timer["type"], timer["schedule"], timer["useMonitor"]) == (
        "timerTrigger",
        "%SQS_POLL_SCHEDULE%",
        True,
    )

    [token] = functions["drain_input_queue_on_token"]
    assert (token["type"], token["direction"], token["name"]) == ("queueTrigger", "IN", "token")
    assert (token["queueName"], token["connection"]) == ("%SQS_SCALE_OUT_QUEUE%", "AzureWebJobsStorage")

    auth_level = baked.combination.answer("http_auth_level").upper()
    for name, route in (("send_message", "messages"), ("send_message_batch", "messages/batch")):
        trigger, output = functions[name]
        assert trigger["type"] == "httpTrigger"
        assert (trigger["route"], trigger["methods"], trigger["authLevel"]) == (route, ["POST"], auth_level)
        assert (output["type"], output["name"]) == ("http", "$return")


def test_the_ops_cli_answers_in_every_combination(baked: Baked) -> None:
    result = run([sys.executable, "-m", baked.package, "--help"], baked.path, clean_env())
    assert result.returncode == 0, result.stderr
    for command in ("drain", "send", "stats", "redrive"):
        assert command in result.stdout


@pytest.mark.slow  # the app's whole suite: minutes (its fast subset is in test_inner_loop.py)
def test_generated_test_suite_passes(baked_with_app_tests: Baked) -> None:
    baked = baked_with_app_tests
    # Two workers, as the app's CI runs it (`pytest -n auto` on a 2-core runner): half of the suite's
    # time is spent waiting on its emulators, which a second worker fills.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"]
    result = run(command, baked.path, clean_env())
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


OIDC_DEFAULTS_SCRIPT = """
import dataclasses, json, sys
from {package}.engine.settings import OidcSettings
# With no role answered, the app needs AWS_OIDC_ROLE_ARN; the other defaults still show.
env = {{}} if sys.argv[1] else {{"AWS_OIDC_ROLE_ARN": "arn:aws:iam::123456789012:role/not-answered"}}
print(json.dumps(dataclasses.asdict(OidcSettings.from_env(env))))
"""


def test_oidc_defaults_are_the_answers(baked_oidc: Baked) -> None:
    answer = baked_oidc.combination.answer
    script = OIDC_DEFAULTS_SCRIPT.format(package=baked_oidc.package)
    result = run([sys.executable, "-c", script, answer("aws_role_arn")], baked_oidc.path, clean_env())
    assert result.returncode == 0, result.stderr
    defaults = json.loads(result.stdout)
    assert defaults["audience"] == answer("token_audience")
    assert defaults["managed_identity_client_id"] == answer("managed_identity_client_id")
    if answer("aws_role_arn"):
        assert defaults["role_arn"] == answer("aws_role_arn")
    assert defaults["session_name"] == baked_oidc.context["project_slug"]


def test_vscode_f5_starts_the_host_and_attaches_to_the_python_worker(baked: Baked) -> None:
    vscode = baked.path / ".vscode"
    tasks = {t["label"]: t for t in json.loads((vscode / "tasks.json").read_text(encoding="utf-8"))["tasks"]}
    [attach] = json.loads((vscode / "launch.json").read_text(encoding="utf-8"))["configurations"]
    host = tasks[attach["preLaunchTask"]]
    assert (host["type"], host["command"], host["isBackground"]) == ("func", "host start", True)
    assert host["dependsOn"] in tasks  # pip install of requirements.txt into the venv first
    # The Core Tools start the Python worker with debugpy on 9091 for this task.
    assert (attach["type"], attach["request"], attach["connect"]["port"]) == ("debugpy", "attach", 9091)
    settings = json.loads((vscode / "settings.json").read_text(encoding="utf-8"))
    assert settings["azureFunctions.projectLanguageModel"] == 2
    assert settings["azureFunctions.pythonVenv"] == ".venv"
