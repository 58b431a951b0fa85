"""SQS failing mid-drain: the loop survives, reports the errors, and loses nothing.

A small proxy on 127.0.0.1 (sqs_proxy.py) stands between the real client and the emulator.
It answers one ReceiveMessage request with an HTTP 500 and SQS's error document, as SQS
does when it has an internal failure, and passes everything else through untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from {{ cookiecutter.package_name }}.engine.consumer import drain

from .conftest import AppUnderTest, MakeQueue, Recorder, queue_depth
from .sqs_proxy import SqsProxy, sqs_proxy
from .test_consumer import FAST, send

pytestmark = pytest.mark.slow


@pytest.fixture
def failing_proxy(sqs_endpoint: str) -> Iterator[SqsProxy]:
    with sqs_proxy(sqs_endpoint, fail={"ReceiveMessage": 1}) as proxy:
        yield proxy


def test_a_drain_survives_sqs_errors_reports_them_and_loses_nothing(
    app_env: AppUnderTest, make_queue: MakeQueue, failing_proxy: SqsProxy
) -> None:
    queues = make_queue()
    bodies = [f"m-{n:02d}" for n in range(30)]
    send(app_env.client, queues.url, bodies)
    # One attempt per call: botocore does not retry, so every injected error reaches the loop.
    client = failing_proxy.client(app_env.settings.region)
    recorder = Recorder()

    summary = drain(client, queues.url, recorder.success, replace(FAST, max_concurrency=4))

    assert failing_proxy.failed == 1
    assert summary.sqs_errors == 1
    assert "InternalError" in summary.last_error
    assert summary.stopped_because == "queue_empty"  # one error is under the give-up count
    assert sorted(recorder.succeeded) == bodies
    assert queue_depth(app_env.client, queues.url).backlog == 0
