"""The local tools as a user runs them: the smoke command, the local emulator, sample messages."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from {{ cookiecutter.package_name }}.engine.settings import use_local_settings
from {{ cookiecutter.package_name }}.ops import cli
from {{ cookiecutter.package_name }}.ops.local_dev import emulator as local_emulator
from {{ cookiecutter.package_name }}.ops.local_dev.sample_messages import POISON_WHY, sample_id

from .conftest import CONFIGURED_QUEUES, AppUnderTest, drain_all

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package_name }}"


def local_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: nothing AWS-related set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SQS_"))}
    return {**env, **extra}


def run_command(
    command: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", PACKAGE, command, *args],
        cwd=PROJECT,
        env=env or local_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# What the smoke sends, and what the handler acknowledges besides the good messages (S3's test event).
{%- if cookiecutter.message_source == "sns" %}
SOURCE_LINES = ("Publish             topic smoke-", "PublishBatch        topic smoke-", "through SNS")
{%- elif cookiecutter.message_source == "s3" %}
SOURCE_LINES = ("PutObject           bucket smoke-", " sent  10 events", "through S3")
{%- elif cookiecutter.message_source == "eventbridge" %}
SOURCE_LINES = ("PutEvents           bus smoke-", " sent  10 events", "through EventBridge")
{%- endif %}
EXTRA = {{ 1 if cookiecutter.message_source == "s3" else 0 }}
HANDLED = "11 good messages" + (" and S3's test event" if EXTRA else "")


def test_the_smoke_command_runs_the_whole_flow_and_prints_the_counts_it_promised() -> None:
    result = run_command("smoke")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "drain finished" not in result.stdout + result.stderr  # the app's logs only with --verbose
    out = result.stdout
    assert "on an embedded SQS emulator (moto)" in out
    for line in (
{%- if cookiecutter.message_source == "http" %}
        "send_message        POST /api/messages        202  1 message",
        "send_message_batch  POST /api/messages/batch  200  10 messages",
        f"send_message        POST /api/messages        202  1 poison message ({POISON_WHY})",
        "ok      12 messages sent over HTTP",
{%- else %}
        # Through the source itself, on the emulator (source_on_emulator.py).
        *SOURCE_LINES,
        f" sent  1 poison event ({POISON_WHY})",
        "ok      12 events sent through",
{%- endif %}
        f"ok      {HANDLED} handled by the trigger",
        f"ok      {11 + EXTRA} handled messages deleted",
        "ok      poison message failed on {{ cookiecutter.max_receive_count }} receives (maxReceiveCount)",
        "ok      DLQ holds the poison message, and only it",
        "ok      input queue empty",
    ):
        assert line in out
    assert "FAILED" not in out
    assert f": 12 sent, {11 + EXTRA} handled, 1 in the DLQ, 0 left." in out


{%- if cookiecutter.message_source == "http" %}


def test_the_smoke_command_fails_and_names_the_count_that_does_not_hold() -> None:
    # A batch limit below the smoke's batch: the batch function refuses it (413).
    result = run_command("smoke", env=local_env(SQS_MAX_BATCH_ITEMS="5"))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "send_message_batch  POST /api/messages/batch  413" in result.stdout
    assert "FAILED  12 messages sent over HTTP: expected 12, got 2" in result.stdout
    assert "FAILED: 3 of 6 checks did not hold." in result.stdout
{%- endif %}


@pytest.fixture
def emulator_process() -> Iterator[tuple[subprocess.Popen[str], int, queue.Queue[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", PACKAGE, "emulator", "--port", str(port)],
        cwd=PROJECT,
        env=local_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def forward_output() -> None:
        for line in process.stdout or ():
            lines.put(line)

    threading.Thread(target=forward_output, daemon=True).start()
    try:
        yield process, port, lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def read_until(lines: queue.Queue[str], text: str) -> str:
    seen = ""
    while text not in seen:
        seen += lines.get(timeout=120)  # a guard against a hang, not a timing assertion
    return seen


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_the_local_emulator_serves_the_configured_queues_and_stops_on_sigterm(
    emulator_process: tuple[subprocess.Popen[str], int, queue.Queue[str]],
) -> None:
    process, port, lines = emulator_process
    banner = read_until(lines, "Ctrl-C stops the emulator")
    assert f"listening on http://127.0.0.1:{port}" in banner
    assert local_emulator.AZURITE_COMMAND in banner

    client = boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="{{ cookiecutter.aws_region }}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    urls = client.list_queues()["QueueUrls"]
    assert sorted(url.rsplit("/", 1)[-1] for url in urls) == sorted(CONFIGURED_QUEUES.values())
    input_url = client.get_queue_url(QueueName=CONFIGURED_QUEUES["SQS_INPUT_QUEUE"])["QueueUrl"]
    attributes = client.get_queue_attributes(QueueUrl=input_url, AttributeNames=["RedrivePolicy"])
    assert "RedrivePolicy" in attributes["Attributes"]

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert "SQS emulator stopped." in read_until(lines, "stopped")


# What the banner prints that no test here can run: Core Tools are not a Python package.
NOT_RUN_HERE = {"func start": "no Core Tools here; the template's tests/test_real_worker.py plays the host"}


BASH = shutil.which("bash") or "/bin/bash"


def next_steps(banner: str) -> list[str]:
    """The commands the banner prints after "Next", as printed (comments dropped)."""
    steps = banner.split("Next, ", 1)[1].split("\nCtrl-C", 1)[0].splitlines()[1:]
    return [step.split("   # ", 1)[0].strip() for step in steps]


def run_as_printed(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command as a user pastes it, in a shell whose venv is active (its python first on PATH)."""
    env = local_env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        [BASH, "-c", command], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )


def azurite_starts(command: str, cwd: Path) -> str:
    """Run the printed Azurite command until its three services listen; its output."""
    env = local_env()
    process = subprocess.Popen(
        [BASH, "-c", f"exec {command}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # npx starts node: stop the whole group
    )
    seen = ""
    try:
        for line in process.stdout or ():
            seen += line
            if seen.count("successfully listening") == 3:
                break
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    return seen


@pytest.mark.skipif(sys.platform == "win32", reason="the banner's commands are for a POSIX shell")
def test_every_command_the_emulator_prints_runs_as_printed(
    emulator_process: tuple[subprocess.Popen[str], int, queue.Queue[str]], tmp_path: Path
) -> None:
    _process, port, lines = emulator_process
    steps = next_steps(read_until(lines, "Ctrl-C stops the emulator"))
    assert len(steps) == 5, steps
    ran = []
    for step in steps:
        if step in NOT_RUN_HERE:
            continue
        if step == local_emulator.AZURITE_COMMAND:
            # In a folder of its own: it writes .azurite/ where it runs.
            assert azurite_starts(step, tmp_path).count("successfully listening") == 3
            ran.append(step)
            continue
        result = run_as_printed(step, PROJECT)
        assert result.returncode == 0, (step, result.stdout[-3000:], result.stderr[-3000:])
        ran.append(step)
        if " samples" in step:
            assert json.loads(result.stdout)["sent"] == 6
        if " stats " in step:
            assert json.loads(result.stdout)["queue"]["visible"] >= 6, result.stdout
        if "pytest" in step:
            assert " passed" in result.stdout
    # This emulator is not where local.settings.json points: each command was told its port.
    assert all(f"127.0.0.1:{port}" in step for step in ran if "python -m" in step), ran


def test_the_queue_commands_say_why_they_do_not_read_the_local_settings() -> None:
    result = run_command("stats")

    assert result.returncode == 2
    assert "SQS_INPUT_QUEUE is not set" in result.stderr
    assert "reads the environment, as the app does in Azure" in result.stderr
    assert "add --settings local.settings.json" in result.stderr


def test_the_local_emulator_refuses_a_port_in_use_and_says_what_to_do() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_command("emulator", "--port", str(taken.getsockname()[1]))

    assert result.returncode == 2
    assert "is in use" in result.stderr
    assert "--port" in result.stderr


def test_without_moto_the_emulator_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto.server", None)  # what an import sees when moto is absent
    with pytest.raises(local_emulator.EmulatorUnavailable, match=r"pip install -r requirements-dev\.txt"):
        local_emulator.start_emulator(port=0)


def test_sample_messages_puts_good_and_poison_messages_on_the_input_queue(app_env: AppUnderTest) -> None:
    assert cli.main(["samples", "--settings", "", "--count", "3", "--poison", "2"]) == 0

    # In the envelope of the message_source ({{ cookiecutter.message_source }}): each one's sample ID says which.
    ids = [sample_id(body) for body in drain_all(app_env.client, app_env.queues.input_url)]
    assert sorted("-poison-" in sample for sample in ids) == [False, False, False, True, True]


def test_local_settings_fill_only_what_the_environment_lacks_and_overrides_win(tmp_path: Path) -> None:
    settings_file = tmp_path / "local.settings.json"
    values = {"SQS_INPUT_QUEUE": "from-file", "SQS_OUTPUT_QUEUE": "out-file", "SQS_MAX_CONCURRENCY": 7}
    settings_file.write_text(json.dumps({"Values": values}), encoding="utf-8")
    environ = {"SQS_INPUT_QUEUE": "from-shell", "AWS_PROFILE": "work"}

    settings = use_local_settings(
        settings_file, {"SQS_OUTPUT_QUEUE": "override", "AWS_PROFILE": None}, environ=environ
    )

    assert (settings.input_queue, settings.output_queue, settings.max_concurrency) == (
        "from-shell",
        "override",
        7,
    )
    assert "AWS_PROFILE" not in environ


def test_the_readme_shows_the_commands_the_tools_run_and_print() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert local_emulator.AZURITE_COMMAND in readme
    for command in ("smoke", "emulator", "samples", "create-queues"):
        assert f"python -m {PACKAGE} {command}" in readme
