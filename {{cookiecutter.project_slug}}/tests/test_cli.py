"""The ops CLI, ``python -m {{ cookiecutter.package_name }}``: each command with good and bad input.

Most tests call ``cli.main`` in process; the ones about signals run the CLI as a child
process with this interpreter, the way an operator runs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.engine.aws_session import cloudwatch_client
from {{ cookiecutter.package_name }}.engine.producer import OutgoingMessage, Sender
from {{ cookiecutter.package_name }}.ops.cli import main
from {{ cookiecutter.package_name }}.ops.local_dev.sample_messages import good_message

from .conftest import AppUnderTest, MakeQueue, QueuePair, drain_all, queue_depth

pytestmark = pytest.mark.slow

APP_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package_name }}"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object] | None, str]:
    """Exit code, the JSON document on stdout (None when there is none), and stderr."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def use_queues(monkeypatch: pytest.MonkeyPatch, queues: QueuePair) -> None:
    """Point the app's input queue and DLQ settings at a test's own queues."""
    monkeypatch.setenv("SQS_INPUT_QUEUE", queues.url)
    monkeypatch.setenv("SQS_DLQ", queues.dlq_url)


def put(app_env: AppUnderTest, url: str, bodies: list[str], group: str | None = None) -> None:
    result = Sender(app_env.client, url).send_batch([OutgoingMessage(b, group_id=group) for b in bodies])
    assert result.failures == []


def work_items(count: int) -> list[str]:
    """Bodies the app's handler takes, in the envelope of its message_source (sample_messages.py)."""
    return [good_message("cli", n) for n in range(count)]


# drain


def test_drain_prints_its_summary(app_env: AppUnderTest, capsys: pytest.CaptureFixture[str]) -> None:
    put(
        app_env,
        app_env.queues.input_url,
        work_items(3),
        group="g" if app_env.queues.input_url.endswith(".fifo") else None,
    )

    code, summary, _ = run_cli(capsys, "drain", "--budget-seconds", "20")

    assert code == 0
    assert summary is not None
    assert (summary["received"], summary["succeeded"], summary["deleted"]) == (3, 3, 3)
    assert summary["stopped_because"] == "queue_empty"


@pytest.mark.parametrize("handler", ["record_slowly", "record_async"])
def test_drain_runs_a_sync_or_an_async_handler_given_by_name(
    app_env: AppUnderTest,
    make_queue: MakeQueue,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    handler: str,
) -> None:
    queues = make_queue()
    use_queues(monkeypatch, queues)
    bodies = [f"m-{n:02d}" for n in range(12)]
    put(app_env, queues.url, bodies)
    record = tmp_path / "handled.txt"
    monkeypatch.setenv("TEST_RECORD_FILE", str(record))
    monkeypatch.setenv("TEST_HANDLER_SECONDS", "0.05")

    code, summary, _ = run_cli(
        capsys, "drain", "--handler", f"tests.cli_handlers:{handler}", "--linger-seconds", "0"
    )

    assert code == 0
    assert sorted(handled(record)) == bodies  # each body ran to its end before its delete
    assert summary is not None
    assert summary["deleted"] == 12
    assert queue_depth(app_env.client, queues.url).backlog == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--max-concurrency", "0"], "SQS_MAX_CONCURRENCY"),
        (["--linger-seconds", "-1"], "SQS_LINGER_SECONDS"),
        (["--wait-time-seconds", "21"], "SQS_WAIT_TIME_SECONDS"),
        (["--handler", "no_such_module:handle"], "no_such_module"),
        (["--handler", "handle_everything"], "MODULE:FUNCTION"),
    ],
)
def test_drain_refuses_bad_options_by_name(
    app_env: AppUnderTest, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    code, summary, err = run_cli(capsys, "drain", *args)

    assert (code, summary) == (2, None)
    assert words in err


def cli_process(
    app_env: AppUnderTest, queues: QueuePair, record: Path, handler_seconds: float, **settings: str
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "SQS_INPUT_QUEUE": queues.url,
        "SQS_DLQ": queues.dlq_url,
        "TEST_RECORD_FILE": str(record),
        "TEST_HANDLER_SECONDS": str(handler_seconds),
        **settings,
    }
    return subprocess.Popen(
        [sys.executable, "-m", PACKAGE, "drain", "--handler", "tests.cli_handlers:record_slowly"],
        cwd=APP_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


Spawn = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Starts CLI consumers; kills any still running when the test ends, passed or failed."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: Any, **settings: str) -> subprocess.Popen[str]:
        started.append(cli_process(*args, **settings))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def handled(record: Path) -> list[str]:
    return record.read_text(encoding="utf-8").splitlines() if record.exists() else []


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_a_consumer_killed_mid_drain_loses_nothing(
    app_env: AppUnderTest, make_queue: MakeQueue, tmp_path: Path, spawn: Spawn
) -> None:
    visibility = 2
    queues = make_queue(visibility_timeout=visibility)
    bodies = [f"m-{n:02d}" for n in range(40)]
    put(app_env, queues.url, bodies)
    record = tmp_path / "handled.txt"
    settings = {"SQS_VISIBILITY_TIMEOUT_SECONDS": str(visibility), "SQS_MAX_CONCURRENCY": "4"}

    doomed = spawn(app_env, queues, record, 0.2, **settings)
    wait_for(lambda: len(handled(record)) >= 8, "the first consumer to get going")
    doomed.kill()  # SIGKILL: no cleanup, no acks, no releases
    doomed.communicate()
    assert doomed.returncode == -signal.SIGKILL
    before_kill = set(handled(record))
    assert 0 < len(before_kill) < len(bodies)

    time.sleep(visibility + 1)  # what it held becomes visible again once its last extension ends
    successor = spawn(app_env, queues, record, 0, **settings)
    out, err = successor.communicate(timeout=60)

    assert successor.returncode == 0, err
    summary = json.loads(out)
    every_handling = handled(record)
    duplicates = len(every_handling) - len(set(every_handling))
    print(f"killed after {len(before_kill)} handled; {duplicates} handled twice; successor: {summary}")
    assert sorted(set(every_handling)) == bodies  # nothing lost
    assert summary["received"] == summary["deleted"] == len(bodies) - len(before_kill) + duplicates
    assert queue_depth(app_env.client, queues.url).backlog == 0
    assert drain_all(app_env.client, queues.dlq_url) == []


def test_drain_stops_gracefully_on_sigterm(
    app_env: AppUnderTest, make_queue: MakeQueue, tmp_path: Path, spawn: Spawn
) -> None:
    queues = make_queue(visibility_timeout=30)
    put(app_env, queues.url, [f"m-{n:02d}" for n in range(40)])
    record = tmp_path / "handled.txt"

    consumer = spawn(app_env, queues, record, 0.3, SQS_MAX_CONCURRENCY="4")
    wait_for(lambda: len(handled(record)) >= 4, "the consumer to get going")
    consumer.send_signal(signal.SIGTERM)
    out, err = consumer.communicate(timeout=30)

    assert consumer.returncode == 0, err
    assert "SIGTERM" in err
    summary = json.loads(out)
    assert summary["stopped_because"] == "stop_requested"
    # The running handlers finished and were acked; what was received but not started went back at once.
    assert summary["succeeded"] == summary["deleted"] == len(handled(record))
    assert summary["released"] == summary["received"] - summary["succeeded"]
    attributes = app_env.client.get_queue_attributes(
        QueueUrl=queues.url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert int(attributes["ApproximateNumberOfMessages"]) == 40 - summary["succeeded"]


# send


def test_send_one_message_with_attributes(
    app_env: AppUnderTest, make_queue: MakeQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    queues = make_queue()
    code, result, _ = run_cli(
        capsys, "send", "--queue", queues.url, "--body", "hello", "--attribute", "Tenant=contoso"
    )

    assert code == 0
    assert result is not None
    assert (result["sent"], result["failed"]) == (1, 0)
    [message] = app_env.client.receive_message(
        QueueUrl=queues.url, WaitTimeSeconds=1, MessageAttributeNames=["All"]
    )["Messages"]
    assert message["MessageId"] == result["message_id"]
    assert message["Body"] == "hello"
    assert message["MessageAttributes"]["Tenant"]["StringValue"] == "contoso"


def test_send_a_json_lines_file_in_batches(
    app_env: AppUnderTest, make_queue: MakeQueue, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    queues = make_queue(fifo=True)
    lines = [json.dumps({"n": n}) for n in range(150)]
    (tmp_path / "messages.jsonl").write_text("\n".join(lines) + "\n\n", encoding="utf-8")

    code, result, err = run_cli(
        capsys, "send", "--queue", queues.url, "--file", str(tmp_path / "messages.jsonl"), "--group-id", "g"
    )

    assert code == 0, err
    assert result is not None
    assert (result["sent"], result["failed"], result["failures"]) == (150, 0, [])
    assert "150 of 150" in err  # progress
    assert drain_all(app_env.client, queues.url) == lines  # one group: in order


@pytest.mark.parametrize(
    ("args", "file_text", "words"),
    [
        (["--file", "{file}"], '{"ok": 1}\nnot json\n', "line 2 is not JSON"),
        (["--file", "{file}"], "\n\n", "holds no message"),
        (["--file", "{missing}"], None, "cannot read"),
        (["--body", "x", "--attribute", "novalue"], None, "NAME=VALUE"),
        (["--body", "x", "--delay-seconds", "901"], None, "delay_seconds must be 0-900"),
        (["--body", "x" * 262_145], None, "SQS_MAX_MESSAGE_BYTES"),
        (["--body", "x", "--queue", "no-such-queue"], None, "no such queue"),
    ],
)
def test_send_refuses_bad_input_and_sends_nothing(
    app_env: AppUnderTest,
    make_queue: MakeQueue,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: list[str],
    file_text: str | None,
    words: str,
) -> None:
    queues = make_queue()
    file = tmp_path / "messages.jsonl"
    if file_text is not None:
        file.write_text(file_text, encoding="utf-8")
    args = [a.format(file=file, missing=tmp_path / "missing.jsonl") for a in args]
    if "--queue" not in args:
        args += ["--queue", queues.url]

    code, result, err = run_cli(capsys, "send", *args)

    assert (code, result) == (2, None)
    assert words in err
    assert drain_all(app_env.client, queues.url) == []


def test_send_without_a_body_or_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["send"])
    assert exit_info.value.code == 2
    assert "--body" in capsys.readouterr().err


# stats


def test_stats_shows_depth_in_flight_and_oldest_age_for_the_queue_and_its_dlq(
    app_env: AppUnderTest,
    make_queue: MakeQueue,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queues = make_queue()
    use_queues(monkeypatch, queues)
    put(app_env, queues.url, ["a", "b", "c"])
    put(app_env, queues.dlq_url, ["dead"])
    app_env.client.receive_message(QueueUrl=queues.url, MaxNumberOfMessages=1, VisibilityTimeout=30)
    # SQS has no API for the oldest message's age; AWS publishes it to CloudWatch. Publish it
    # here as AWS would, and check that stats reads it from there.
    queue_name = queues.url.rsplit("/", 1)[-1]
    cloudwatch_client(app_env.settings).put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
                "Timestamp": datetime.now(UTC),
                "Value": 42.0,
                "Unit": "Seconds",
            }
        ],
    )

    code, stats, _ = run_cli(capsys, "stats")

    assert code == 0
    assert stats is not None
    queue, dlq = stats["queue"], stats["dlq"]
    assert isinstance(queue, dict) and isinstance(dlq, dict)
    assert (queue["name"], queue["visible"], queue["in_flight"]) == (queue_name, 2, 1)
    assert (queue["oldest_message_age_seconds"], queue["age_source"].startswith("cloudwatch")) == (42.0, True)
    assert (dlq["url"], dlq["visible"], dlq["in_flight"], dlq["oldest_message_age_seconds"]) == (
        queues.dlq_url,
        1,
        0,
        None,
    )


def test_stats_of_a_queue_that_does_not_exist_is_refused(
    app_env: AppUnderTest, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stats, err = run_cli(capsys, "stats", "--queue", "no-such-queue")

    assert (code, stats) == (2, None)
    assert "no such queue" in err


# redrive


def test_redrive_moves_the_dlq_back_to_the_input_queue(
    app_env: AppUnderTest,
    make_queue: MakeQueue,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queues = make_queue()
    use_queues(monkeypatch, queues)
    put(app_env, queues.dlq_url, ["x", "y", "z"])

    code, result, err = run_cli(capsys, "redrive")

    assert code == 0, err
    assert result is not None
    # StartMessageMoveTask where the endpoint has it (LocalStack, AWS), else the loop (moto).
    assert result["method"] in {"move-task", "loop"}
    assert (result["moved"], result["failed"], result["status"]) == (3, 0, "COMPLETED")
    assert sorted(drain_all(app_env.client, queues.url)) == ["x", "y", "z"]
    assert drain_all(app_env.client, queues.dlq_url) == []


def test_redrive_by_loop_keeps_fifo_groups_in_order_and_can_stop_at_a_count(
    app_env: AppUnderTest,
    make_queue: MakeQueue,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queues = make_queue(fifo=True)
    use_queues(monkeypatch, queues)
    put(app_env, queues.dlq_url, ["1", "2", "3", "4", "5"], group="g")

    code, result, err = run_cli(capsys, "redrive", "--method", "loop", "--max-messages", "3")

    assert code == 0, err
    assert result is not None
    assert (result["method"], result["moved"]) == ("loop", 3)
    messages = app_env.client.receive_message(
        QueueUrl=queues.url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert [(m["Body"], m["Attributes"]["MessageGroupId"]) for m in messages] == [
        ("1", "g"),
        ("2", "g"),
        ("3", "g"),
    ]
    assert drain_all(app_env.client, queues.dlq_url) == ["4", "5"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--max-messages", "0"], "at least 1"),
        (["--method", "move-task", "--max-messages", "3"], "needs --method loop"),
        (["--to", "no-such-queue"], "no such queue"),
    ],
)
def test_redrive_refuses_bad_input(
    app_env: AppUnderTest, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    put(
        app_env,
        app_env.queues.dlq_url,
        ["stays"],
        group="g" if app_env.queues.dlq_url.endswith(".fifo") else None,
    )

    code, result, err = run_cli(capsys, "redrive", *args)

    assert (code, result) == (2, None)
    assert words in err
    assert drain_all(app_env.client, app_env.queues.dlq_url) == ["stays"]


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["purge"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
