"""Sending from any function: @sqs_output, @sqs_output_http and sqs_collector, against SQS over HTTP."""

from __future__ import annotations

import json

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest
from pydantic import BaseModel

from {{ cookiecutter.package_name }}.engine.output import (
    MessagesNotSent,
    sqs_collector,
    sqs_output,
    sqs_output_http,
)
from {{ cookiecutter.package_name }}.engine.queues import is_fifo

from .conftest import AppUnderTest, drain_all, http_post


class Shipment(BaseModel):
    order_id: str
    quantity: int


def group_for(app_env: AppUnderTest) -> str | None:
    """A FIFO output queue needs a message group; a standard one takes none."""
    return "tests" if is_fifo(app_env.settings.output_queue) else None


def test_a_timer_function_sends_what_it_returns(app_env: AppUnderTest) -> None:
    @sqs_output(group_id=group_for(app_env))
    def every_minute(timer: func.TimerRequest) -> list[Shipment | dict[str, int] | str]:
        return [Shipment(order_id="o-1", quantity=2), {"count": 3}, "plain text"]

    assert every_minute(TimerRequest()) is None

    received = drain_all(app_env.client, app_env.queues.output_url)
    assert sorted(received) == sorted(['{"order_id":"o-1","quantity":2}', '{"count": 3}', "plain text"])


def test_a_timer_function_reports_the_refused_message_and_sends_the_rest(app_env: AppUnderTest) -> None:
    oversized = "x" * (app_env.settings.max_message_bytes + 1)

    @sqs_output(group_id=group_for(app_env))
    def every_minute(timer: func.TimerRequest) -> list[str]:
        return ["first", oversized, "third"]

    with pytest.raises(MessagesNotSent) as refused:
        every_minute(TimerRequest())

    assert [(f.index, f.code) for f in refused.value.failures] == [(1, "MessageTooLarge")]
    assert "1 of 3 messages not sent" in str(refused.value)
    assert sorted(drain_all(app_env.client, app_env.queues.output_url)) == ["first", "third"]


def test_returning_none_sends_nothing(app_env: AppUnderTest) -> None:
    @sqs_output()
    def quiet(timer: func.TimerRequest) -> None:
        return None

    quiet(TimerRequest())
    assert drain_all(app_env.client, app_env.queues.output_url) == []


def test_an_http_function_sends_and_answers_with_every_failure(app_env: AppUnderTest) -> None:
    oversized = "x" * (app_env.settings.max_message_bytes + 1)

    @sqs_output_http(group_id=group_for(app_env))
    def relay(req: func.HttpRequest) -> list[dict[str, str]]:
        return [{"line": line, "group": "g"} for line in req.get_body().decode().split("\n")]

    response = relay(http_post("relay", f"a\n{oversized}\nc".encode()))

    assert response.status_code == 207, response.get_body()
    answer = json.loads(response.get_body())
    assert (answer["sent"], answer["failed"]) == (2, 1)
    assert [(f["index"], f["code"]) for f in answer["failures"]] == [(1, "MessageTooLarge")]
    assert answer["message_ids"][1] is None and all(answer["message_ids"][i] for i in (0, 2))
    received = [json.loads(body)["line"] for body in drain_all(app_env.client, app_env.queues.output_url)]
    assert sorted(received) == ["a", "c"]


def test_a_collector_sends_in_batches_of_ten_and_flushes_at_the_end(app_env: AppUnderTest) -> None:
    with sqs_collector(group_id=group_for(app_env)) as out:
        for i in range(25):
            out.add({"i": i})
        assert out.result.sent == 20  # two full batches went as they filled

    assert (out.result.sent, out.result.failed, out.result.requests) == (25, 0, 3)
    received = drain_all(app_env.client, app_env.queues.output_url)
    assert sorted(json.loads(body)["i"] for body in received) == list(range(25))


def test_a_collector_reports_a_refusal_by_the_order_it_was_added(app_env: AppUnderTest) -> None:
    with pytest.raises(MessagesNotSent) as refused, sqs_collector(group_id=group_for(app_env)) as out:
        for i in range(12):
            out.add("x" * (app_env.settings.max_message_bytes + 1) if i == 11 else f"m{i}")

    assert [(f.index, f.code) for f in refused.value.failures] == [(11, "MessageTooLarge")]
    assert len(drain_all(app_env.client, app_env.queues.output_url)) == 11


def test_a_named_queue_gets_the_messages(app_env: AppUnderTest) -> None:
    @sqs_output(app_env.queues.dlq_url, group_id=group_for(app_env))
    def to_the_other_queue(timer: func.TimerRequest) -> str:
        return "elsewhere"

    to_the_other_queue(TimerRequest())
    assert drain_all(app_env.client, app_env.queues.output_url) == []
    assert drain_all(app_env.client, app_env.queues.dlq_url) == ["elsewhere"]


def test_the_host_indexes_a_decorated_function_with_its_own_trigger_only() -> None:
    app = func.FunctionApp()

    @app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False)
    @sqs_output()
    def every_five_minutes(timer: func.TimerRequest) -> str:
        return "tick"

    (function,) = app.get_functions()
    assert function.get_function_name() == "every_five_minutes"
    bindings = [json.loads(raw) for raw in function.get_raw_bindings()]
    assert [(b["type"], b["name"]) for b in bindings] == [("timerTrigger", "timer")]
