"""FIFO: attempts retried inside a pass count across passes, through the attempt ledger.

SQS's ``ApproximateReceiveCount`` misses the retries a FIFO pass makes itself. A pass that
ends mid-retry gives the message back, and the ledger (Azure Tables, on Azurite here) keeps
what SQS missed: the message gets at most ``maxReceiveCount`` attempts and its backoff goes on
growing. Written before a move to the DLQ, it also keeps a message whose delete never came
through (as after a crash) from running again. Against the real endpoint over HTTP.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import replace

import pytest
from mypy_boto3_sqs import SQSClient

from {{ cookiecutter.package_name }}.engine.attempt_ledger import TableAttemptLedger, attempt_ledger
from {{ cookiecutter.package_name }}.engine.consumer import DrainOptions, DrainSummary, Handler, SqsMessage, drain
from {{ cookiecutter.package_name }}.engine.consumer.acknowledging import GROUP_DELETE_ATTEMPTS
from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue

from .conftest import AppUnderTest, BatchEntryFaults, MakeQueue, drain_all, queue_depth
from .test_consumer import FAST, send

pytestmark = pytest.mark.slow


def drain_on(
    client: SQSClient,
    url: str,
    handler: Handler,
    options: DrainOptions,
    ledger: TableAttemptLedger | None,
    passes: int = 20,
) -> list[DrainSummary]:
    """Passes with the ledger, as ticks would run them, until nothing is left on the queue."""
    summaries = []
    for _ in range(passes):
        summaries.append(drain(client, url, handler, options, attempts=ledger))
        if queue_depth(client, url).backlog == 0:
            break
    return summaries


class Poison:
    """A handler: the poison fails every time (each attempt and its time noted); others are noted."""

    def __init__(self, stop_after: int = 0) -> None:
        self.attempts: list[tuple[int, float]] = []
        self.receipt = ""  # the poison's, as last run
        self.handled: list[str] = []
        self.stop = threading.Event()
        self.stop_after = stop_after

    def __call__(self, message: SqsMessage) -> None:
        if message.body != "poison":
            self.handled.append(message.body)
            return
        self.attempts.append((message.receive_count, time.monotonic()))
        self.receipt = message.receipt_handle
        if len(self.attempts) == self.stop_after:
            self.stop.set()  # the pass ends while the poison waits for its next attempt
        raise ValueError("cannot be handled")

    def counts(self) -> list[int]:
        return [count for count, _ in self.attempts]

    def backoffs(self) -> list[float]:
        return [round(later - earlier, 1) for (_, earlier), (_, later) in itertools.pairwise(self.attempts)]


def test_a_pass_that_ends_mid_retry_hands_its_attempts_to_the_next(
    app_env: AppUnderTest, make_queue: MakeQueue, storage_connection: str
) -> None:
    queues = make_queue(fifo=True, max_receive_count=5)
    send(app_env.client, queues.url, ["poison", "g-1"], group_of={"poison": "g", "g-1": "g"})
    ledger = attempt_ledger(queues.url)
    poison = Poison(stop_after=2)
    options = replace(FAST, backoff_base_seconds=1)

    first = drain(app_env.client, queues.url, poison, options, stop=poison.stop, attempts=ledger)
    later = drain_on(app_env.client, queues.url, poison, options, ledger)

    context = f"attempts {poison.attempts}, backoffs {poison.backoffs()}, passes {[first, *later]}"
    assert first.stopped_because == "stop_requested", context
    # Two attempts in the first pass, three in the later ones: five in all, numbered as they ran.
    assert poison.counts() == [1, 2, 3, 4, 5], context
    # About 1, 2, 4 and 8 s: the backoff went on growing across the hand-back.
    backoffs = poison.backoffs()
    assert all(earlier < after for earlier, after in itertools.pairwise(backoffs)), context
    assert drain_all(app_env.client, queues.dlq_url) == ["poison"]
    assert poison.handled == ["g-1"]
    assert queue_depth(app_env.client, queues.url).backlog == 0
    calls = [s.attempt_ledger_calls for s in [first, *later]]
    print(f"\nhand-back mid-retry: backoffs {backoffs}; attempt ledger calls per pass {calls}")


def test_a_message_whose_delete_after_its_dlq_move_never_came_through_is_not_run_again(
    app_env: AppUnderTest, make_queue: MakeQueue, storage_connection: str
) -> None:
    # As after a crash between the move and the delete: the poison comes back after its visibility.
    queues = make_queue(fifo=True, max_receive_count=3, visibility_timeout=4)
    bodies = ["poison", "g-1", "g-2"]
    send(app_env.client, queues.url, bodies, group_of=dict.fromkeys(bodies, "g"))
    ledger = attempt_ledger(queues.url)
    poison = Poison()
    # Every delete of the poison after its move is refused, until the pass gives up on it.
    faults = BatchEntryFaults(
        app_env.client,
        "DeleteMessageBatch",
        lambda entry: entry["ReceiptHandle"] == poison.receipt,
        times=GROUP_DELETE_ATTEMPTS,
        sender_fault=True,
        code="ReceiptHandleIsInvalid",
        whole_calls=True,
    )
    try:
        summaries = drain_on(
            app_env.client, queues.url, poison, replace(FAST, visibility_timeout_seconds=4), ledger
        )
    finally:
        faults.remove()

    context = f"attempts {poison.attempts}, passes {summaries}"
    assert len(faults.injected) == GROUP_DELETE_ATTEMPTS, context
    assert poison.counts() == [1, 2, 3], context  # never run again
    assert sum(s.dead_lettered for s in summaries) == 2, context  # moved again, at once
    assert drain_all(app_env.client, queues.dlq_url) == ["poison"]  # one copy: the same message ID
    assert poison.handled == ["g-1", "g-2"], context
    assert queue_depth(app_env.client, queues.url).backlog == 0


def test_a_ledger_that_fails_costs_one_warning_and_no_message(
    app_env: AppUnderTest, make_queue: MakeQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queues = make_queue(fifo=True, max_receive_count=5)
    send(app_env.client, queues.url, ["poison", "g-1"], group_of={"poison": "g", "g-1": "g"})
    # A storage account nobody listens for: the SDK's real connection errors.
    from azure.data.tables import TableClient

    unreachable = TableClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;",
        "sqsattempts",
        retry_total=0,
    )
    ledger = TableAttemptLedger(unreachable, queues.url)
    poison = Poison(stop_after=2)
    options = replace(FAST, backoff_base_seconds=1)

    with caplog.at_level(logging.WARNING):
        first = drain(app_env.client, queues.url, poison, options, stop=poison.stop, attempts=ledger)
        later = drain_on(app_env.client, queues.url, poison, options, ledger)

    failures = [r for r in caplog.records if r.getMessage().startswith("attempt ledger failed")]
    # One a pass that needed it (the hand-back, then the first re-received unit), none after.
    assert 1 <= len(failures) <= 2, [r.getMessage() for r in failures]
    # Counted from SQS's receive count alone: more attempts than maxReceiveCount, but nothing lost.
    assert poison.counts()[:2] == [1, 2]
    assert drain_all(app_env.client, queues.dlq_url) == ["poison"]
    assert poison.handled == ["g-1"]
    assert queue_depth(app_env.client, queues.url).backlog == 0
    assert first.stopped_because == "stop_requested" and later


def test_the_apps_drain_keeps_the_ledger_of_a_fifo_queue_in_its_storage_account(
    app_env: AppUnderTest, make_queue: MakeQueue, storage_connection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    queues = make_queue(fifo=True, max_receive_count=5)
    send(app_env.client, queues.url, ["poison"], group_of={"poison": "g"})
    poison = Poison(stop_after=2)
    settings = replace(app_env.settings, input_queue=queues.url, retry_backoff_base_seconds=1)

    summary = drain_input_queue(settings, handler=poison, stop=poison.stop)

    assert summary.attempt_ledger_calls == 1  # the hand-back
    ledger = attempt_ledger(queues.url)
    assert ledger is not None
    [message] = received_again(app_env.client, queues.url)
    # Its second attempt, which SQS did not count.
    assert ledger.recall([message.message_id]) == {message.message_id: 1}
    # With no storage account named (the ops CLI without one), a drain goes without.
    monkeypatch.delenv("AzureWebJobsStorage")
    assert attempt_ledger(queues.url) is None


def received_again(client: SQSClient, url: str) -> list[SqsMessage]:
    """The queue's messages once their backoff is over (a test observer; given back at once)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        raw = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if raw:
            for message in raw:
                client.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            return [SqsMessage.from_sqs(message) for message in raw]
    return []
