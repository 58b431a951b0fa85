"""Several drains at once on one queue, each its own process, as fanned-out instances run them.

Each process is the ops CLI's ``drain`` (the same pass the timer and the token trigger run),
with a handler that appends each body it handles to one shared file. Run on the embedded
moto by default; ``SQS_TEST_ENDPOINT_URL`` runs them on LocalStack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.engine.producer import OutgoingMessage, Sender

from .conftest import AppUnderTest, MakeQueue, QueuePair, drain_all, queue_depth

pytestmark = pytest.mark.slow

APP_ROOT = Path(__file__).resolve().parents[1]
DRAINS = 3


def start_drains(queues: QueuePair, record: Path, handler_seconds: float) -> list[subprocess.Popen[str]]:
    env = {
        **os.environ,
        "SQS_INPUT_QUEUE": queues.url,
        "SQS_DLQ": queues.dlq_url,
        "SQS_MAX_CONCURRENCY": "4",
        "SQS_DRAIN_BUDGET_SECONDS": "120",
        "TEST_RECORD_FILE": str(record),
        "TEST_HANDLER_SECONDS": str(handler_seconds),
    }
    command = [
        sys.executable,
        "-m",
        "{{ cookiecutter.package_name }}",
        "drain",
        "--handler",
        "tests.cli_handlers:record_slowly",
    ]
    return [
        subprocess.Popen(
            command, cwd=APP_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(DRAINS)
    ]


@pytest.fixture
def drains() -> Iterator[list[subprocess.Popen[str]]]:
    """The drain processes a test starts; any still running at the end is killed, pass or fail."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def finish(processes: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
    summaries = []
    for process in processes:
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err[-3000:]
        summaries.append(json.loads(out))
    return summaries


def test_drains_at_once_on_a_standard_queue_lose_nothing_and_handle_nothing_twice(
    app_env: AppUnderTest, make_queue: MakeQueue, tmp_path: Path, drains: list[subprocess.Popen[str]]
) -> None:
    queues = make_queue()
    bodies = [f"m-{n:04d}" for n in range(900)]
    assert Sender(app_env.client, queues.url).send_batch([OutgoingMessage(b) for b in bodies]).failures == []
    record = tmp_path / "handled.txt"

    # 4 handlers of 50 ms each: one drain alone would need 11 s or more, so they overlap.
    drains += start_drains(queues, record, 0.05)
    summaries = finish(drains)

    handled = record.read_text(encoding="utf-8").splitlines()
    print("handled per drain:", [s["succeeded"] for s in summaries])
    assert sorted(handled) == bodies  # none lost, none twice (no handler failed)
    assert all(s["failed"] == 0 and s["succeeded"] == s["deleted"] for s in summaries)
    assert all(s["stopped_because"] == "queue_empty" for s in summaries)
    assert all(s["succeeded"] for s in summaries), "a drain got no message: they did not overlap"
    assert queue_depth(app_env.client, queues.url).backlog == 0
    assert drain_all(app_env.client, queues.dlq_url) == []


def test_drains_at_once_on_a_fifo_queue_keep_each_group_in_order(
    app_env: AppUnderTest, make_queue: MakeQueue, tmp_path: Path, drains: list[subprocess.Popen[str]]
) -> None:
    queues = make_queue(fifo=True)
    groups = [f"g{g}" for g in range(6)]
    sent = [OutgoingMessage(f"{group}-{n:03d}", group_id=group) for n in range(50) for group in groups]
    assert Sender(app_env.client, queues.url).send_batch(sent).failures == []
    record = tmp_path / "handled.txt"

    drains += start_drains(queues, record, 0.02)
    summaries = finish(drains)

    handled = record.read_text(encoding="utf-8").splitlines()
    print("handled per drain:", [s["succeeded"] for s in summaries])
    assert Counter(handled) == Counter(m.body for m in sent)  # none lost, none twice
    for group in groups:
        in_group = [body for body in handled if body.startswith(f"{group}-")]
        assert in_group == sorted(in_group), f"{group} handled out of order"
    assert queue_depth(app_env.client, queues.url).backlog == 0
    assert drain_all(app_env.client, queues.dlq_url) == []
