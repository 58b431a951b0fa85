"""Reproductions from the review of issue 23 (each test FAILS on the code as merged).

1. A FIFO delete refused for about a second at the end of a pass: the acknowledger's close sends
   every paused retry at once (``_ready_deletes`` ignores ``not_before`` once closing), so all
   ``GROUP_DELETE_ATTEMPTS`` go out back to back and the delete is given up on: the message runs
   again and the pass fails, where the documented pauses (0.25 s, doubling) would have outlasted it.
2. ``@idempotent`` on FIFO: a Table storage outage during ``claim()`` longer than the retry
   window counts as the message's attempts: a message whose body never ran reaches the DLQ.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import replace

import pytest
from azure.data.tables import TableClient

from {{ cookiecutter.package_name }}.engine import consumer
from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage, drain
from {{ cookiecutter.package_name }}.engine.consumer.acknowledging import GROUP_DELETE_ATTEMPTS
from {{ cookiecutter.package_name }}.engine.idempotency import idempotent
from {{ cookiecutter.package_name }}.engine.idempotency.table_store import TableStore

from .conftest import AppUnderTest, BatchEntryFaults, MakeQueue, drain_all, queue_depth
from .test_consumer import FAST, send
from .test_idempotency import TableFaults

pytestmark = pytest.mark.slow


def test_a_fifo_delete_refused_for_a_second_as_the_pass_closes_is_retried_with_its_pauses(
    app_env: AppUnderTest, make_queue: MakeQueue
) -> None:
    queues = make_queue(fifo=True, visibility_timeout=4)
    send(app_env.client, queues.url, ["g-0"], group_of={"g-0": "g"})
    runs: list[int] = []
    receipt: list[str] = []
    stop = threading.Event()
    refused_until: list[float] = []

    def refusing(entry: dict[str, object]) -> bool:
        # SQS fails this message's delete entry (InternalError) for 1.5 s from the first refusal.
        if not receipt or entry["ReceiptHandle"] != receipt[0]:
            return False
        if not refused_until:
            refused_until.append(time.monotonic() + 1.5)
        return time.monotonic() < refused_until[0]

    faults = BatchEntryFaults(
        app_env.client, "DeleteMessageBatch", refusing, times=100, sender_fault=False, whole_calls=True
    )

    def handler(message: SqsMessage) -> None:
        runs.append(message.receive_count)
        receipt[:] = [message.receipt_handle]
        stop.set()  # the pass stops receiving; it closes as soon as this handler returns
        time.sleep(0.5)

    options = replace(FAST, visibility_timeout_seconds=4)
    try:
        first = drain(app_env.client, queues.url, handler, options, stop=stop)
    finally:
        faults.remove()
    later = drain(app_env.client, queues.url, handler, replace(options, wait_time_seconds=6, linger_seconds=6))

    context = f"refused {len(faults.injected)} times, runs {runs}, {first}, {later}"
    # Paused as documented (0.25, 0.5, 1 s...), the 4th attempt lands after the 1.5 s refusal.
    assert first.delete_failed == 0, context
    assert runs == [1], context


def test_a_claim_outage_past_the_retry_window_never_dead_letters_a_message_whose_body_did_not_run(
    app_env: AppUnderTest,
    make_queue: MakeQueue,
    storage_connection: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = f"idem{uuid.uuid4().hex[:16]}"
    monkeypatch.setenv("IDEMPOTENCY_TABLE", table)
    monkeypatch.setenv("IDEMPOTENCY_IN_PROGRESS_SECONDS", "3")  # a 1 s retry window
    TableClient.from_connection_string(storage_connection, table).create_table()
    faults = TableFaults()
    faults.down.add("insert")  # Table storage refuses claims: an outage of a few seconds
    store = TableStore.from_environment(per_call_policies=[faults])
    queues = make_queue(fifo=True, max_receive_count=3)
    runs: list[str] = []

    @idempotent(scope="outage", store=store)
    def ship(message: SqsMessage) -> None:
        runs.append(message.body)

    app_env.client.send_message(
        QueueUrl=queues.url, MessageBody=json.dumps({"id": 1}), MessageGroupId="g", MessageDeduplicationId="d1"
    )
    options = replace(consumer.DrainOptions.from_settings(app_env.settings), backoff_base_seconds=1)
    try:
        during = drain(app_env.client, queues.url, ship, options)
    finally:
        faults.down.clear()  # storage is back
        after = drain(app_env.client, queues.url, ship, options)
        TableClient.from_connection_string(storage_connection, table).delete_table()

    context = f"claims refused {faults.failed['insert']}, runs {runs}, {during}, {after}"
    assert drain_all(app_env.client, queues.dlq_url) == [], context  # the store's failure, not the message's
    assert runs == [json.dumps({"id": 1})], context
    assert queue_depth(app_env.client, queues.url).backlog == 0, context
