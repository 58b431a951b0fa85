"""The timer-triggered drain, called with a real func.TimerRequest, against SQS."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from azure.functions.timer import TimerRequest
from botocore.awsrequest import AWSResponse

from {{ cookiecutter.package_name }}.engine.runtime import DrainFailed

from .conftest import AppUnderTest, drain_all, handled_ids, queue_depth, work_body

pytestmark = pytest.mark.slow

Functions = dict[str, Callable[..., object]]


def put(app_env: AppUnderTest, bodies: list[str]) -> None:
    fifo = app_env.queues.input_url.endswith(".fifo")
    for n, body in enumerate(bodies):
        extra = {"MessageGroupId": f"g{n % 3}"} if fifo else {}
        app_env.client.send_message(QueueUrl=app_env.queues.input_url, MessageBody=body, **extra)


def summaries(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.sqs_drain for r in caplog.records if r.msg.startswith("drain finished")]  # type: ignore[attr-defined]


def test_timer_ticks_handle_good_messages_and_move_poison_to_the_dlq(
    app_env: AppUnderTest, functions: Functions, caplog: pytest.LogCaptureFixture
) -> None:
    good = [work_body(f"w{i}") for i in range(12)]
    poison = ["not json", json.dumps({"id": "no-action"})]
    put(app_env, good + poison)

    # Each tick is one drain; a failed message comes back on a later tick until the redrive.
    with caplog.at_level(logging.INFO):
        for _ in range(app_env.settings.max_receive_count + 2):
            functions["drain_input_queue_on_timer"](TimerRequest(past_due=False))
            if queue_depth(app_env.client, app_env.queues.input_url).backlog == 0:
                break

    assert sorted(handled_ids(caplog.records)) == sorted(f"w{i}" for i in range(12))
    assert queue_depth(app_env.client, app_env.queues.input_url).backlog == 0
    assert sorted(drain_all(app_env.client, app_env.queues.dlq_url)) == sorted(poison)
    ticks = summaries(caplog)
    assert sum(t["succeeded"] for t in ticks) == 12  # type: ignore[misc]
    # On FIFO the consumer moves the poison itself (a send to the DLQ, then a delete).
    moved = sum(t["dead_lettered"] for t in ticks)  # type: ignore[misc]
    assert sum(t["deleted"] for t in ticks) - moved == 12  # type: ignore[misc]
    assert sum(t["failed"] for t in ticks) == 2 * app_env.settings.max_receive_count  # type: ignore[misc]


def test_drain_of_an_empty_queue_returns_after_one_long_poll(
    app_env: AppUnderTest, functions: Functions, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        functions["drain_input_queue_on_timer"](TimerRequest(past_due=True))

    [fields] = summaries(caplog)
    assert (fields["received"], fields["receive_requests"], fields["stopped_because"]) == (
        0,
        1,
        "queue_empty",
    )


def test_a_drain_whose_deletes_are_refused_fails_the_invocation_and_loses_nothing(
    app_env: AppUnderTest, functions: Functions
) -> None:
    put(app_env, [work_body(f"d{i}") for i in range(3)])

    # As with a role that lacks sqs:DeleteMessage: the real client gets SQS's error answer.
    def access_denied(**_: object) -> tuple[AWSResponse, dict[str, object]]:
        error = {"Code": "AccessDenied", "Message": "not authorized to perform sqs:DeleteMessage"}
        return AWSResponse("https://sqs", 403, {}, None), {"Error": error, "ResponseMetadata": {}}

    app_env.client.meta.events.register("before-call.sqs.DeleteMessageBatch", access_denied)
    try:
        with pytest.raises(DrainFailed, match=r"3 handled message\(s\) could not be deleted.*AccessDenied"):
            functions["drain_input_queue_on_timer"](TimerRequest())
    finally:
        app_env.client.meta.events.unregister("before-call.sqs.DeleteMessageBatch", access_denied)
    # Handled again later: at least once.
    assert queue_depth(app_env.client, app_env.queues.input_url).backlog == 3


@pytest.mark.parametrize("poll_until_next_tick", ["true", "false"])
def test_the_timer_polls_until_the_hosts_next_occurrence_when_asked(
    app_env: AppUnderTest,
    functions: Functions,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    poll_until_next_tick: str,
) -> None:
    import threading
    from datetime import UTC, datetime, timedelta

    monkeypatch.setenv("SQS_POLL_UNTIL_NEXT_TICK", poll_until_next_tick)
    # The host's ScheduleStatus, as it serializes it: the next tick 4 s away.
    next_tick = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    timer = TimerRequest(schedule_status={"Last": datetime.now(UTC).isoformat(), "Next": next_tick})
    later = threading.Timer(2.5, lambda: put(app_env, [work_body("meanwhile")]))
    later.start()
    try:
        with caplog.at_level(logging.INFO):
            functions["drain_input_queue_on_timer"](timer)
    finally:
        later.join()

    [fields] = summaries(caplog)
    # Polling until the next tick, the pass took the message; stopping after the 1 s linger, it had ended.
    assert fields["succeeded"] == (1 if poll_until_next_tick == "true" else 0)
