"""``PassObserver.deleted``: the pass tells its observer of each delete SQS confirmed, once, after any
retries, and nothing of one it gave up on; an observer that fails there costs no ack. The large payloads'
object deletes (engine/large_payloads.py) hang on it. Delete refusals are injected at botocore's boundary
(``BatchEntryFaults``), on the real client against the real endpoint.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest

from {{ cookiecutter.package_name }}.engine.consumer import PassObserver, SqsMessage, drain

from .conftest import AppUnderTest, BatchEntryFaults, MakeQueue, queue_depth
from .test_consumer import FAST, send

pytestmark = pytest.mark.slow

BODIES = ["a", "b", "c", "d"]


class DeletesHeard(PassObserver):
    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.heard: list[str] = []
        self.lock = threading.Lock()

    def deleted(self, messages: Sequence[SqsMessage]) -> None:
        with self.lock:
            self.heard += [m.body for m in messages]
        if self.fails:
            raise RuntimeError("the observer's own fault")


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
def test_the_observer_hears_of_each_confirmed_delete_once_after_its_retries(
    app_env: AppUnderTest, make_queue: MakeQueue, fifo: bool
) -> None:
    queues = make_queue(fifo=fifo)
    send(app_env.client, queues.url, BODIES, group_of=dict.fromkeys(BODIES, "g") if fifo else None)
    receipts: dict[str, str] = {}

    def handler(message: SqsMessage) -> None:
        receipts[message.receipt_handle] = message.body

    # b's delete fails once through no fault of ours: retried, then confirmed. On a standard queue, c's is
    # refused for good (not retried): SQS will give c out again, so nobody may be told it is gone.
    failed_once = BatchEntryFaults(
        app_env.client,
        "DeleteMessageBatch",
        lambda e: receipts.get(str(e["ReceiptHandle"])) == "b",
        whole_calls=True,  # a delete may go alone in its call
    )
    refused = None
    if not fifo:  # on FIFO a refusal is retried for about 18 s (test_fifo_deletes_are_confirmed.py)
        refused = BatchEntryFaults(
            app_env.client,
            "DeleteMessageBatch",
            lambda e: receipts.get(str(e["ReceiptHandle"])) == "c",
            sender_fault=True,
            code="ReceiptHandleIsInvalid",
            whole_calls=True,
        )
    observer = DeletesHeard()
    try:
        summary = drain(app_env.client, queues.url, handler, FAST, observer=observer)
    finally:
        failed_once.remove()
        if refused:
            refused.remove()

    assert len(failed_once.injected) == 1
    told = ["a", "b", "d"] if refused else BODIES
    assert sorted(observer.heard) == told, summary
    assert (summary.deleted, summary.delete_failed) == (len(told), len(BODIES) - len(told))


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
def test_an_observer_that_fails_on_deletes_costs_no_ack_and_is_logged(
    app_env: AppUnderTest, make_queue: MakeQueue, fifo: bool, caplog: pytest.LogCaptureFixture
) -> None:
    queues = make_queue(fifo=fifo)
    send(app_env.client, queues.url, BODIES, group_of=dict.fromkeys(BODIES, "g") if fifo else None)
    handled: list[str] = []
    observer = DeletesHeard(fails=True)

    with caplog.at_level(logging.ERROR):
        summary = drain(app_env.client, queues.url, lambda m: handled.append(m.body), FAST, observer=observer)

    # Every message handled once (a FIFO group in order), every delete confirmed, nothing left.
    assert handled == BODIES if fifo else sorted(handled) == BODIES
    assert (summary.deleted, summary.delete_failed, summary.failed) == (len(BODIES), 0, 0)
    assert sorted(observer.heard) == BODIES
    assert queue_depth(app_env.client, queues.url).backlog == 0
    failures = [r for r in caplog.records if r.getMessage() == "a pass observer failed on confirmed deletes"]
    assert failures and all(r.exc_info for r in failures)
