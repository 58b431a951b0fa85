"""Output -> queue -> trigger over HTTP: what the app does end to end, through boto3 and SQS."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from azure.functions.timer import TimerRequest

from .conftest import AppUnderTest, handled_ids, http_post, queue_depth, send_params, work_body

Functions = dict[str, Callable[..., object]]


def test_messages_sent_by_the_http_functions_are_handled_by_the_trigger(
    app_env: AppUnderTest,
    functions: Functions,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Point the output functions at the input queue, so the trigger consumes what they send.
    monkeypatch.setenv("SQS_OUTPUT_QUEUE", app_env.settings.input_queue)
    monkeypatch.setenv("SQS_MAX_BATCH_ITEMS", "11")  # more than one SendMessageBatch (anonymous bakes: 10)
    params = send_params(app_env.settings.input_queue)
    one = work_body("single").encode()
    many = json.dumps([json.loads(work_body(f"batch-{i}")) for i in range(11)]).encode()

    assert functions["send_message"](http_post("messages", one, params)).status_code == 202  # type: ignore[attr-defined]
    assert functions["send_message_batch"](http_post("messages/batch", many, params)).status_code == 200  # type: ignore[attr-defined]
    with caplog.at_level(logging.INFO):
        functions["drain_input_queue_on_timer"](TimerRequest())

    processed = set(handled_ids(caplog.records))
    assert processed == {"single"} | {f"batch-{i}" for i in range(11)}
    assert queue_depth(app_env.client, app_env.queues.input_url).backlog == 0
