"""Baked apps run in the real Python worker library, as under ``func start``, against SQS over HTTP.

The worker (``azure-functions-runtime``, Python 3.13) indexes, loads and invokes the app in a
subprocess (tests/worker_harness.py plays the host). SQS is a moto server on 127.0.0.1 that this
module starts; the queues are created by the app's own ``queues.ensure_queues``. Azure Storage,
for the drain tokens, is Azurite, started with the default app's own ``ops.local_dev.azurite``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from .conftest import MATRIX, TEMPLATE_DIR, Baked, _bake, clean_env, python_or_skip, run
from .worker_harness import ensure_venv, run_scenario

# The full run's (a worker venv from PyPI, and the host's messages); `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

# The default app, a FIFO one on another plan and auth mode, and the one that runs on 3.13 in Azure.
WORKER_COMBINATION_NAMES = (
    "defaults",
    "fifo-consumption-default-chain-py311",
    "py313-default-chain-localstack",
)
WORKER_COMBINATIONS = [c for c in MATRIX if c.name in WORKER_COMBINATION_NAMES]
# A renamed matrix entry must fail loudly here, not drop out of the worker test.
assert len(WORKER_COMBINATIONS) == len(WORKER_COMBINATION_NAMES), "a worker combination is not in MATRIX"
FUNCTIONS = {"drain_input_queue_on_timer", "drain_input_queue_on_token", "send_message", "send_message_batch"}
VENV_CACHE = TEMPLATE_DIR / ".cache" / "worker"

ENSURE_QUEUES = """
from {package}.engine.aws_session import sqs_client
from {package}.engine.queues import ensure_queues
from {package}.engine.settings import Settings

settings = Settings.from_env()
ensure_queues(sqs_client(settings), settings)
"""


@pytest.fixture(scope="session")
def worker_python() -> str:
    return python_or_skip("3.13", "the worker library needs it; install it with pyenv")


# The worker runs Python 3.13, so every bake runs on the 3.13 lock: a bake's own requirements.txt is the
# lock of its Python (azure-functions 1.x for 3.11 and 3.12, which refuses 3.13); the locks differ in that
# line only (tests/test_locks.py).
WORKER_LOCK = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "requirements" / "py313.txt"


@pytest.fixture(scope="module")
def sqs_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def local_dev_module(baked: Baked, name: str) -> Any:
    """A module of the bake's ``ops/local_dev`` (standard library only), loaded from its file."""
    path = baked.path / baked.package / "ops" / "local_dev" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"baked_{baked.package}_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # before exec: its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def input_body(baked: Baked, work_item: dict[str, Any]) -> str:
    """A work item as the bake's ``message_source`` delivers it, wrapped by the bake's own sample events."""
    source = baked.combination.answer("message_source")
    if source == "http":
        return json.dumps(work_item)
    events = local_dev_module(baked, "source_events")
    if source == "sns":
        return str(events.sns_notification("orders", json.dumps(work_item)))
    if source == "eventbridge":
        return str(events.eventbridge_event("shop", "WorkItem", work_item))
    raise AssertionError(f"no work item travels in a {source} message; pick another worker combination")


@pytest.fixture(scope="module")
def storage_connection(cookies_session: Any) -> Iterator[str]:
    """Azurite on free 127.0.0.1 ports, started by the app's own fixture code (npm, pinned)."""
    azurite = local_dev_module(_bake(cookies_session, MATRIX[0]), "azurite").start_azurite()
    try:
        yield str(azurite.connection_string)
    finally:
        azurite.stop()


@pytest.fixture(params=WORKER_COMBINATIONS, ids=[c.name for c in WORKER_COMBINATIONS])
def baked_for_worker(request: pytest.FixtureRequest, cookies_session: Any) -> Baked:
    return _bake(cookies_session, request.param)


def app_settings(baked: Baked, endpoint: str) -> dict[str, str]:
    """What `func start` would read from local.settings.json, pointed at fresh queues on moto."""
    suffix = uuid.uuid4().hex[:8]

    def unique(name: str) -> str:
        fifo = name.endswith(".fifo")
        return f"{name.removesuffix('.fifo')[:60]}-{suffix}" + (".fifo" if fifo else "")

    context = baked.context
    return {
        **clean_env(),
        "SQS_INPUT_QUEUE": unique(context["input_queue_name"]),
        "SQS_OUTPUT_QUEUE": unique(context["output_queue_name"]),
        "SQS_DLQ": unique(context["dlq_name"]),
        "SQS_POLL_SCHEDULE": "0 */1 * * * *",
        "SQS_SCALE_OUT_QUEUE": f"tokens-{suffix}",
        "SQS_WAIT_TIME_SECONDS": "1",
        "SQS_DRAIN_BUDGET_SECONDS": "30",
        "SQS_VISIBILITY_TIMEOUT_SECONDS": "30",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": context["aws_region"],
        "AWS_AUTH_MODE": "default_chain",
    }


def step(results: list[dict[str, Any]], op: str, index: int = 0) -> dict[str, Any]:
    return [r for r in results if r["op"] == op][index]


def bodies_on(sqs: Any, url: str) -> list[dict[str, str]]:
    """Every message on a queue as {id, body}, deleting as it goes (an observer, not the app's consumer)."""
    seen: list[dict[str, str]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    ):
        for message in messages:
            seen.append({"id": message["MessageId"], "body": message["Body"]})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return seen


def depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names)


def app_queues(baked: Baked, settings: dict[str, str], sqs_endpoint: str) -> Any:
    """The app's queues made as the app makes them, and an SQS client on the emulator."""
    setup = run([sys.executable, "-c", ENSURE_QUEUES.format(package=baked.package)], baked.path, settings)
    assert setup.returncode == 0, setup.stderr
    return boto3.client(
        "sqs",
        endpoint_url=sqs_endpoint,
        region_name=settings["AWS_REGION"],
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def test_the_app_indexes_loads_and_runs_in_the_real_worker(
    baked_for_worker: Baked, worker_python: str, sqs_endpoint: str
) -> None:
    baked = baked_for_worker
    venv_python = ensure_venv(VENV_CACHE, worker_python, WORKER_LOCK)
    # 12 items cross a SendMessageBatch's 10; an anonymous bake caps a request at 10 by default.
    settings = {**app_settings(baked, sqs_endpoint), "SQS_MAX_BATCH_ITEMS": "12"}
    sqs = app_queues(baked, settings, sqs_endpoint)

    urls = {
        key: sqs.get_queue_url(QueueName=settings[key])["QueueUrl"]
        for key in ("SQS_INPUT_QUEUE", "SQS_OUTPUT_QUEUE", "SQS_DLQ")
    }
    fifo = settings["SQS_INPUT_QUEUE"].endswith(".fifo")
    group = {"MessageGroupId": "worker-test"} if fifo else {}
    for i in range(3):
        work_item = {"id": f"in-{i}", "action": "ship", "payload": {"i": i}}
        sqs.send_message(QueueUrl=urls["SQS_INPUT_QUEUE"], MessageBody=input_body(baked, work_item), **group)

    query = {"group_id": "worker-test"} if settings["SQS_OUTPUT_QUEUE"].endswith(".fifo") else {}
    one = {"id": "out-single", "action": "ship", "payload": {"qty": 2}}
    batch = [{"id": f"out-batch-{i}", "action": "count", "payload": {"i": i}} for i in range(12)]
    json_headers = {"Content-Type": "application/json"}
    results = run_scenario(
        venv_python,
        baked.path,
        [
            {"op": "init"},
            {"op": "metadata"},
            {"op": "load_all"},
            {
                "op": "invoke_http",
                "function": "send_message",
                "body": json.dumps(one),
                "query": query,
                "headers": json_headers,
            },
            {
                "op": "invoke_http",
                "function": "send_message",
                "body": "{not json",
                "query": query,
                "headers": json_headers,
            },
            {
                "op": "invoke_http",
                "function": "send_message_batch",
                "body": json.dumps(batch),
                "query": query,
                "headers": json_headers,
            },
            {"op": "invoke_timer", "function": "drain_input_queue_on_timer"},
        ],
        settings,
    )

    # init -> metadata -> load: the worker indexed exactly the four functions, with their bindings.
    init = step(results, "init")
    assert (init["status"], init["exception"]) == ("Success", None)
    functions = step(results, "metadata")["functions"]
    assert set(functions) == FUNCTIONS
    [timer] = functions["drain_input_queue_on_timer"]["bindings"]
    assert (timer["type"], timer["schedule"]) == ("timerTrigger", "%SQS_POLL_SCHEDULE%")
    [token] = functions["drain_input_queue_on_token"]["bindings"]
    assert (token["type"], token["direction"], token["queueName"], token["connection"]) == (
        "queueTrigger",
        "IN",
        "%SQS_SCALE_OUT_QUEUE%",
        "AzureWebJobsStorage",
    )
    auth_level = baked.combination.answer("http_auth_level").upper()
    for name, route in (("send_message", "messages"), ("send_message_batch", "messages/batch")):
        trigger, output = functions[name]["bindings"]
        assert (trigger["type"], trigger["route"], trigger["methods"], trigger["authLevel"]) == (
            "httpTrigger",
            route,
            ["POST"],
            auth_level,
        )
        assert (output["type"], output["direction"], output["name"]) == ("http", "OUT", "$return")
    assert all(f["unresolved_settings"] == [] for f in functions.values())
    assert step(results, "load_all")["status"] == "Success"

    # The HTTP functions, invoked with the RpcHttp the host sends.
    sent = step(results, "invoke_http", 0)
    assert sent["status"] == "Success", sent["exception"]
    assert sent["http"]["status_code"] == 202, sent["http"]
    assert sent["http"]["headers"]["content-type"] == "application/json"
    single_id = json.loads(sent["http"]["body"])["message_id"]

    refused = step(results, "invoke_http", 1)
    assert refused["http"]["status_code"] == 400
    assert "JSON" in json.loads(refused["http"]["body"])["error"]

    batch_sent = step(results, "invoke_http", 2)
    assert batch_sent["http"]["status_code"] == 200, batch_sent["http"]
    batch_result = json.loads(batch_sent["http"]["body"])
    assert (batch_result["sent"], batch_result["failed"], batch_result["failures"]) == (12, 0, [])

    # The timer's drain: a successful invocation that consumed the input queue.
    drained = step(results, "invoke_timer")
    assert (drained["status"], drained["exception"]) == ("Success", None)
    assert any("drain finished" in line for line in drained["logs"]), drained["logs"]
    for i in range(3):  # the example handler logs each work item it processed
        assert any(f"work item in-{i} " in line for line in drained["logs"]), drained["logs"]

    # What reached SQS: the sent messages on the output queue, nothing left on the input queue or DLQ.
    output = bodies_on(sqs, urls["SQS_OUTPUT_QUEUE"])
    assert sorted(json.loads(m["body"])["id"] for m in output) == sorted(
        ["out-single", *(b["id"] for b in batch)]
    )
    assert {m["id"] for m in output if json.loads(m["body"])["id"] == "out-single"} == {single_id}
    assert set(batch_result["message_ids"]) == {m["id"] for m in output} - {single_id}
    assert depth(sqs, urls["SQS_INPUT_QUEUE"]) == 0
    assert depth(sqs, urls["SQS_DLQ"]) == 0


PUT_TOKENS = """
import sys, time
from {package}.engine.scale_out.drain_token import DrainToken
from {package}.engine.scale_out.token_queue import put_tokens, token_queue_client
from {package}.engine.settings import Settings

settings = Settings.from_env()
budget = settings.drain_budget_seconds
fresh = DrainToken(settings.input_queue, time.time(), budget, "worker-test")
stale = DrainToken(settings.input_queue, time.time() - budget - 5, budget, "too-old")
put_tokens(token_queue_client(settings.scale_out_queue), [fresh, stale])
"""


def test_drain_tokens_the_app_writes_run_in_the_real_worker(
    baked_for_worker: Baked, worker_python: str, sqs_endpoint: str, storage_connection: str
) -> None:
    """The app's writer puts a fresh and a stale token on Azurite; the worker's queue trigger
    gets each as the host hands it over: the fresh one drains the queue, the stale one is dropped."""
    baked = baked_for_worker
    venv_python = ensure_venv(VENV_CACHE, worker_python, WORKER_LOCK)
    settings = {**app_settings(baked, sqs_endpoint), "AzureWebJobsStorage": storage_connection}
    sqs = app_queues(baked, settings, sqs_endpoint)
    input_url = sqs.get_queue_url(QueueName=settings["SQS_INPUT_QUEUE"])["QueueUrl"]
    group = {"MessageGroupId": "worker-test"} if input_url.endswith(".fifo") else {}
    for i in range(4):
        work_item = {"id": f"tok-{i}", "action": "ship"}
        sqs.send_message(QueueUrl=input_url, MessageBody=input_body(baked, work_item), **group)
    put = run([sys.executable, "-c", PUT_TOKENS.format(package=baked.package)], baked.path, settings)
    assert put.returncode == 0, put.stderr

    results = run_scenario(
        venv_python,
        baked.path,
        [
            {"op": "init"},
            {"op": "metadata"},
            {"op": "load_all"},
            {"op": "invoke_queue", "function": "drain_input_queue_on_token"},
            {"op": "invoke_queue", "function": "drain_input_queue_on_token"},
        ],
        settings,
    )

    assert step(results, "load_all")["status"] == "Success"
    fresh, stale = (step(results, "invoke_queue", n) for n in range(2))
    assert (fresh["status"], fresh["exception"], fresh["token_queue"]) == ("Success", None, "deleted")
    for i in range(4):
        assert any(f"work item tok-{i} " in line for line in fresh["logs"]), fresh["logs"]
    assert any("drain finished" in line and "worker-test" in line for line in fresh["logs"]), fresh["logs"]
    assert depth(sqs, input_url) == 0
    assert (stale["status"], stale["token_queue"]) == ("Success", "deleted")
    assert any("dropped unrun" in line for line in stale["logs"]), stale["logs"]
    assert not any("drain finished" in line for line in stale["logs"]), stale["logs"]


def test_the_watchdog_drains_in_the_real_worker_while_the_timer_is_stopped(
    cookies_session: Any, worker_python: str, sqs_endpoint: str, storage_connection: str
) -> None:
    """The timer ticks once, then stops. The watchdog that tick armed turns visible after the missed tick,
    and the worker's queue trigger, given it as the host hands it over, drains in the timer's place
    (messages sent after the tick included), as ``drain_input_queue_on_token``: never the timer function,
    whose invocations alone the dead man's switch counts. Its successor is the one watchdog left."""
    from azure.storage.queue import QueueClient

    baked = _bake(cookies_session, MATRIX[0])
    venv_python = ensure_venv(VENV_CACHE, worker_python, WORKER_LOCK)
    settings = {
        **app_settings(baked, sqs_endpoint),
        "AzureWebJobsStorage": storage_connection,
        "SQS_POLL_SCHEDULE": "*/1 * * * * *",  # every second: time compressed
        "SQS_WATCHDOG_MISSED_TICKS": "1",
    }
    sqs = app_queues(baked, settings, sqs_endpoint)
    input_url = sqs.get_queue_url(QueueName=settings["SQS_INPUT_QUEUE"])["QueueUrl"]
    tokens = QueueClient.from_connection_string(storage_connection, settings["SQS_SCALE_OUT_QUEUE"])
    started = time.time()
    watchdog_runs_at = started + 20  # the worker starts and ticks well before
    sent: list[float] = []

    def send_after_the_tick() -> None:
        while time.time() < watchdog_runs_at - 5:  # the tick arms the watchdog, then drains for ~1 s
            with contextlib.suppress(Exception):
                if tokens.get_queue_properties().approximate_message_count:
                    break
            time.sleep(0.1)
        time.sleep(3)
        for i in range(3):
            sqs.send_message(
                QueueUrl=input_url, MessageBody=input_body(baked, {"id": f"wd-{i}", "action": "ship"})
            )
        sent.append(time.time())

    sender = threading.Thread(target=send_after_the_tick)
    sender.start()
    try:
        results = run_scenario(
            venv_python,
            baked.path,
            [
                {"op": "init"},
                {"op": "metadata"},
                {"op": "load_all"},
                {"op": "invoke_timer", "function": "drain_input_queue_on_timer"},
                {"op": "sleep_until", "at": watchdog_runs_at},  # the timer has stopped
                {"op": "invoke_queue", "function": "drain_input_queue_on_token"},
            ],
            settings,
        )
    finally:
        sender.join()

    assert sent and sent[0] < watchdog_runs_at, "too slow to send between the tick and the watchdog"
    tick, stand_in = step(results, "invoke_timer"), step(results, "invoke_queue")
    assert (tick["status"], tick["exception"]) == ("Success", None)
    assert not any("work item wd-" in line for line in tick["logs"])
    assert (stand_in["status"], stand_in["exception"]) == ("Success", None)
    assert stand_in["token_queue"] == "deleted"
    logs = stand_in["logs"]
    assert any("the watchdog drains in its place" in line for line in logs), logs
    for i in range(3):
        assert any(f"work item wd-{i} " in line for line in logs), logs
    assert any("drain finished" in line and '"started_by": "watchdog"' in line for line in logs), logs
    assert depth(sqs, input_url) == 0
    assert tokens.get_queue_properties().approximate_message_count == 1  # the successor: the chain is one
    tokens.delete_queue()


def test_the_worker_refuses_an_app_it_cannot_index(
    cookies_session: Any, worker_python: str, tmp_path: Path
) -> None:
    """The harness can fail: a second FunctionApp makes the worker's init fail, as `func start` would."""
    baked = _bake(cookies_session, MATRIX[0])
    broken = tmp_path / "broken-app"
    shutil.copytree(baked.path, broken, ignore=shutil.ignore_patterns("__pycache__", ".*_cache"))
    with (broken / "function_app.py").open("a", encoding="utf-8") as source:
        source.write("\nsecond_app = func.FunctionApp()\n")
    venv_python = ensure_venv(VENV_CACHE, worker_python, WORKER_LOCK)

    results = run_scenario(
        venv_python,
        broken,
        [{"op": "init"}, {"op": "metadata"}],
        {**clean_env(), "SQS_POLL_SCHEDULE": "0 * * * * *", "SQS_SCALE_OUT_QUEUE": "tokens"},
    )

    init = step(results, "init")
    assert init["status"] == "Failure"
    assert "FunctionApp" in init["exception"], init["exception"]
    assert step(results, "metadata")["functions"] == {}
