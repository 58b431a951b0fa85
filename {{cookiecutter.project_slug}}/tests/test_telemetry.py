"""Telemetry through the real OpenTelemetry SDK: one trace per message from the HTTP send function
to its handler, the pass's metrics, and OTLP/HTTP from the CLI to a collector.

The SDK's providers are installed once for this process (OpenTelemetry allows one each), with
in-memory exporters; every test reads only the spans and points of its own queues.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import azure.functions as func
import pytest
from opentelemetry import context, metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from {{ cookiecutter.package_name }}.engine.consumer import DrainSummary, SqsMessage
from {{ cookiecutter.package_name }}.engine.producer import OutgoingMessage, Sender
from {{ cookiecutter.package_name }}.engine.queues import queue_name
from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue
from {{ cookiecutter.package_name }}.engine.scale_out.fan_out import FanOut
from {{ cookiecutter.package_name }}.engine.scale_out.pass_leases import PassSlots
from {{ cookiecutter.package_name }}.engine.telemetry import names
from {{ cookiecutter.package_name }}.engine.telemetry.propagation import W3C, xray_span_context
from {{ cookiecutter.package_name }}.engine.telemetry.setup import _without_values

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

from .conftest import AppUnderTest, http_post, send_params
from .otlp_collector import OtlpCollector

# Drains and sends exported to a collector: not the inner loop.
pytestmark = pytest.mark.slow

APP_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package_name }}"
Functions = dict[str, Callable[..., object]]


@dataclass(frozen=True)
class Sdk:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def spans_of(self, queue: str) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name.endswith(f" {queue}")]

    def points(self, name: str, queue: str) -> list[tuple[dict[str, object], float]]:
        """(attributes, value) of each point of ``name`` on ``queue``; a histogram's value is its count."""
        found: list[tuple[dict[str, object], float]] = []
        data = self.metrics.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        attributes: dict[str, object] = dict(point.attributes or {})
                        if attributes.get(names.DESTINATION) == queue:
                            value = point.value if isinstance(point, NumberDataPoint) else point.count
                            found.append((attributes, float(value)))
        return found

    def total(self, name: str, queue: str, **where: object) -> float:
        return sum(v for a, v in self.points(name, queue) if all(a.get(k) == w for k, w in where.items()))


@pytest.fixture(scope="module")
def sdk() -> Sdk:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    installed = trace.get_tracer_provider() is tracer_provider
    assert installed, "another test installed OpenTelemetry providers in this process first"
    return Sdk(spans, reader)


def call(functions: Functions, name: str, request: func.HttpRequest) -> func.HttpResponse:
    response = functions[name](request)
    assert isinstance(response, func.HttpResponse)
    return response


@pytest.fixture
def sends_to_input(app_env: AppUnderTest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The send functions write to the queue the drain reads, so one test sees both ends."""
    monkeypatch.setenv("SQS_OUTPUT_QUEUE", app_env.settings.input_queue)
    return queue_name(app_env.queues.input_url)


class TracedHandler:
    """Records, for each message, the span it ran in; does some traced work of its own."""

    def __init__(self, fail: Callable[[SqsMessage], bool] = lambda _: False) -> None:
        self.fail = fail
        self.spans: dict[str, trace.SpanContext] = {}

    def __call__(self, message: SqsMessage) -> None:
        self.spans[message.message_id] = trace.get_current_span().get_span_context()
        with trace.get_tracer("tests").start_as_current_span("handler work"):
            if self.fail(message):
                raise ValueError(f"refused {message.body}")


def attributes_of(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def one(spans: Sequence[ReadableSpan], name: str, **attributes: object) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.name == name and all(attributes_of(s).get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, (name, attributes, [s.name for s in spans])
    return found[0]


def test_a_message_sent_by_the_http_function_is_one_trace_from_send_to_handler(
    sdk: Sdk, app_env: AppUnderTest, functions: Functions, sends_to_input: str
) -> None:
    queue = sends_to_input
    params = send_params(app_env.settings.input_queue)
    response = call(functions, "send_message", http_post("messages", b'{"id": "t-1"}', params))
    assert response.status_code == 202, response.get_body()
    message_id = json.loads(response.get_body())["message_id"]
    handler = TracedHandler()

    summary = drain_input_queue(handler=handler)

    assert summary.succeeded == 1
    spans = sdk.spans_of(queue)
    send = one(spans, f"send {queue}", **{names.MESSAGE_ID: message_id})
    process = one(spans, f"process {queue}", **{names.MESSAGE_ID: message_id})
    drain = one(spans, f"drain {queue}")
    assert send.kind is trace.SpanKind.PRODUCER
    assert process.kind is trace.SpanKind.CONSUMER
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert process.context.trace_id == send.context.trace_id
    assert [link.context.span_id for link in process.links] == [drain.context.span_id]
    process_attributes = attributes_of(process)
    assert process_attributes[names.MESSAGING_SYSTEM] == "aws_sqs"
    assert process_attributes[names.DESTINATION] == queue
    latency = process_attributes[names.DELIVERY_LATENCY_MS]
    assert isinstance(latency, float) and latency >= 0
    # The handler ran inside the process span, and its own spans nest under it.
    assert handler.spans[message_id].span_id == process.context.span_id
    work = [s for s in sdk.spans.get_finished_spans() if s.name == "handler work"]
    assert process.context.span_id in [s.parent.span_id for s in work if s.parent]


def test_the_batch_function_gives_each_entry_its_own_trace_context(
    sdk: Sdk, app_env: AppUnderTest, functions: Functions, sends_to_input: str
) -> None:
    queue = sends_to_input
    items = [{"id": f"b-{n}"} for n in range(3)]
    params = send_params(app_env.settings.input_queue)
    response = call(
        functions, "send_message_batch", http_post("messages/batch", json.dumps(items).encode(), params)
    )
    assert response.status_code == 200, response.get_body()
    message_ids = json.loads(response.get_body())["message_ids"]
    handler = TracedHandler()

    drain_input_queue(handler=handler)

    spans = sdk.spans_of(queue)
    send = one(spans, f"send {queue}", **{names.BATCH_COUNT: 3})
    assert send.kind is trace.SpanKind.CLIENT
    creates = [s for s in spans if s.name == f"create {queue}"]
    assert len(creates) == 3
    assert {c.parent.span_id for c in creates if c.parent} == {send.context.span_id}
    parents = []
    for message_id in message_ids:
        process = one(spans, f"process {queue}", **{names.MESSAGE_ID: message_id})
        assert process.context.trace_id == send.context.trace_id
        parents.append(process.parent.span_id if process.parent else None)
    assert sorted(parents, key=str) == sorted((c.context.span_id for c in creates), key=str)


def test_an_anonymous_send_starts_a_new_trace_and_drops_the_callers(
    sdk: Sdk, app_env: AppUnderTest, functions: Functions, anonymous_sends: bool
) -> None:
    queue = queue_name(app_env.queues.output_url)
    caller_trace = uuid.uuid4().hex
    caller = f"00-{caller_trace}-b7ad6b7169203331-01"
    headers = {"X-Message-Attribute-traceparent": caller, "X-Message-Attribute-tracestate": "outsider=1"}
    # The caller's context, as the Functions worker attaches it from the request's traceparent header.
    token = context.attach(W3C.extract({"traceparent": caller}))
    try:
        params = send_params(app_env.settings.output_queue)
        response = call(functions, "send_message", http_post("messages", b'{"id": "t"}', params, headers))
    finally:
        context.detach(token)

    assert response.status_code == 202, response.get_body()
    message_id = json.loads(response.get_body())["message_id"]
    send = one(sdk.spans_of(queue), f"send {queue}", **{names.MESSAGE_ID: message_id})
    [message] = app_env.client.receive_message(
        QueueUrl=app_env.queues.output_url, WaitTimeSeconds=1, MessageAttributeNames=["All"]
    )["Messages"]
    carried = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
    if anonymous_sends:
        # A new trace: the message carries the send's own context, nothing of the caller's.
        assert f"{send.context.trace_id:032x}" != caller_trace and send.parent is None
        assert set(carried) == {"traceparent"}
        assert carried["traceparent"].split("-")[1:3] == [
            f"{send.context.trace_id:032x}",
            f"{send.context.span_id:016x}",
        ]
    else:
        # The caller's trace goes on, and its own traceparent is kept as given.
        assert f"{send.context.trace_id:032x}" == caller_trace
        assert carried == {"traceparent": caller, "tracestate": "outsider=1"}


def test_a_pass_counts_received_handled_and_failed_by_error_type(
    sdk: Sdk, app_env: AppUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Failures stay hidden past this pass, so each message is received once.
    monkeypatch.setenv("SQS_RETRY_BACKOFF_BASE_SECONDS", "60")
    queue = queue_name(app_env.queues.input_url)
    dlq = queue_name(app_env.queues.dlq_url)
    bodies = ["ok-1", "ok-2", "ok-3", "bad-1", "bad-2"]
    group = "g" if app_env.queues.input_url.endswith(".fifo") else None
    sender = Sender(app_env.client, app_env.queues.input_url)
    for body in bodies:  # one by one: on FIFO a failure holds back the rest of its group
        sender.send(OutgoingMessage(body, group_id=f"{group}-{body}" if group else None))
    handler = TracedHandler(fail=lambda m: m.body.startswith("bad"))

    summary = drain_input_queue(handler=handler)
    idle = drain_input_queue(handler=handler)

    assert (summary.received, summary.succeeded, summary.failed) == (5, 3, 2)
    assert sdk.total(names.MESSAGES_RECEIVED, queue) == 5
    assert sdk.total(names.MESSAGES_HANDLED, queue) == 3
    assert sdk.points(names.MESSAGES_FAILED, queue) == [
        ({names.MESSAGING_SYSTEM: "aws_sqs", names.DESTINATION: queue, names.ERROR_TYPE: "ValueError"}, 2.0)
    ]
    assert sdk.total(names.HANDLER_DURATION, queue) == 5
    assert sdk.total(names.DELIVERY_LATENCY, queue) == 5
    assert sdk.total(names.PASSES, queue, **{names.OUTCOME: "ok"}) == 2
    assert sdk.total(names.DRAIN_DURATION, queue) == 2
    assert sdk.total(names.IDLE_PASSES, queue) == 1
    # One GetQueueAttributes per queue per pass: the two failures are in flight, hidden for their backoff.
    assert summary.depth_requests == idle.depth_requests == 2
    assert sdk.total(names.QUEUE_VISIBLE, queue) == 0
    assert sdk.total(names.QUEUE_IN_FLIGHT, queue) == 2
    assert sdk.total(names.QUEUE_DELAYED, queue) == 0
    assert sdk.total(names.DLQ_VISIBLE, dlq) == 0
    failed = [s for s in sdk.spans_of(queue) if attributes_of(s).get(names.ERROR_TYPE)]
    assert [attributes_of(s)[names.ERROR_TYPE] for s in failed] == ["ValueError", "ValueError"]
    assert all(s.status.status_code is trace.StatusCode.ERROR for s in failed)


class SlotsInMemory:
    """The pass slots, in memory: this test is about the metric; test_scale_out runs them on Azurite."""

    class Lease:
        lost = False

        def renew(self) -> bool:
            return True

        def release(self) -> None:
            pass

    def claim(self, slots: list[str]) -> SlotsInMemory.Lease:
        return self.Lease()

    def running(self) -> int:
        return 0


def test_drain_tokens_put_by_the_fan_out_are_counted(sdk: Sdk, app_env: AppUnderTest) -> None:
    settings = replace(app_env.settings, scale_out_max_workers=4)
    put: list[int] = []

    def put_tokens(tokens: Sequence[object]) -> int:
        put.append(len(tokens))
        return len(tokens)

    fan_out = FanOut(
        settings,
        slots=cast("PassSlots", SlotsInMemory()),
        backlog=lambda: 100_000,
        tokens_queued=lambda: 0,
        put=put_tokens,
    )
    assert fan_out.start()
    fan_out.on_progress(DrainSummary(succeeded=10, duration_seconds=5.0))

    assert put == [4]
    assert sdk.total(names.DRAIN_TOKENS_ISSUED, settings.input_queue) == 4


def test_a_message_with_ten_attributes_is_sent_unchanged(
    sdk: Sdk, app_env: AppUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    attributes: dict[str, MessageAttributeValueTypeDef] = {
        f"a{n}": {"DataType": "String", "StringValue": str(n)} for n in range(10)
    }
    group = "g" if app_env.queues.output_url.endswith(".fifo") else None
    sender = Sender(app_env.client, app_env.queues.output_url)
    with caplog.at_level(logging.DEBUG, logger="{{ cookiecutter.package_name }}.engine.telemetry"):
        sender.send(OutgoingMessage("full", attributes=attributes, group_id=group))
        sender.send(OutgoingMessage("room", attributes=dict(list(attributes.items())[:9]), group_id=group))

    received = {}
    for _ in range(5):
        for m in app_env.client.receive_message(
            QueueUrl=app_env.queues.output_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", []):
            received[m["Body"]] = {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
        if len(received) == 2:
            break
    assert received["full"] == {f"a{n}": str(n) for n in range(10)}
    assert set(received["room"]) == {f"a{n}" for n in range(9)} | {"traceparent"}
    assert "the message already has 10 attributes" in caplog.text


def test_an_incoming_xray_header_is_the_parent_of_the_process_span(sdk: Sdk, app_env: AppUnderTest) -> None:
    queue = queue_name(app_env.queues.input_url)
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    extra = {"MessageGroupId": "x"} if app_env.queues.input_url.endswith(".fifo") else {}
    app_env.client.send_message(
        QueueUrl=app_env.queues.input_url,
        MessageBody="from x-ray",
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": header}},
        **extra,  # type: ignore[arg-type]
    )

    drain_input_queue(handler=TracedHandler())

    process = one(sdk.spans_of(queue), f"process {queue}")
    assert f"{process.context.trace_id:032x}" == "5759e988bd862e3fe1be46a994272793"
    assert process.parent is not None and f"{process.parent.span_id:016x}" == "53995c3f42cd8ad8"


def test_a_malformed_xray_header_is_ignored() -> None:
    assert xray_span_context("Root=1-5759e988-bd862e3fe1be46a994272793") is None
    assert xray_span_context("Root=1-zz59e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8") is None
    assert xray_span_context("") is None


@pytest.fixture
def collector() -> Iterator[OtlpCollector]:
    started = OtlpCollector()
    try:
        yield started
    finally:
        started.stop()


def test_cli_send_and_drain_export_spans_and_metrics_over_otlp_http(
    app_env: AppUnderTest, collector: OtlpCollector, tmp_path: Path
) -> None:
    queue = queue_name(app_env.queues.input_url)
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_SERVICE_NAME": f"otlp-test-{uuid.uuid4().hex[:6]}",
        "TEST_RECORD_FILE": str(tmp_path / "handled.txt"),
    }
    env.pop("APPLICATIONINSIGHTS_CONNECTION_STRING", None)
    group = ["--group-id", "g"] if app_env.queues.input_url.endswith(".fifo") else []
    commands = [
        ["send", "--queue", "input", "--body", '{"id": "otlp-1"}', *group],
        ["drain", "--handler", "tests.cli_handlers:record_slowly", "--linger-seconds", "0"],
    ]
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", PACKAGE, *command],
            cwd=APP_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr

    spans = {span.name: span for span in collector.received.spans}
    assert {f"send {queue}", f"process {queue}", f"drain {queue}"} <= set(spans)
    send, process = spans[f"send {queue}"], spans[f"process {queue}"]
    assert process.trace_id == send.trace_id
    assert process.parent_span_id == send.span_id
    got = collector.received.metrics
    assert [v for a, v in got[names.MESSAGES_RECEIVED] if a[names.DESTINATION] == queue] == [1]
    assert [v for a, v in got[names.MESSAGES_HANDLED] if a[names.DESTINATION] == queue] == [1]
    assert [v for a, v in got[names.QUEUE_VISIBLE] if a[names.DESTINATION] == queue] == [0]
    assert names.DLQ_VISIBLE in got


def run_child(
    app_env: AppUnderTest, tmp_path: Path, telemetry: dict[str, str]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """tests/telemetry_child.py with these telemetry settings: its report, and every log record it made."""
    log_file = tmp_path / "log.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_"))}
    env.update(
        {
            "SQS_OUTPUT_QUEUE": app_env.settings.input_queue,  # the send functions feed the drain
            # Exports every 50 ms (spans) and 200 ms (metrics), so they are tried while the child runs.
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_METRIC_EXPORT_INTERVAL": "200",
            # The Application Insights exporter keeps what it could not send under the temp folder.
            "TMPDIR": str(tmp_path),
            **telemetry,
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "tests.telemetry_child", str(log_file)],
        cwd=APP_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    return json.loads(result.stdout.strip().splitlines()[-1]), records


def warnings_in(records: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in records if r["level"] in ("WARNING", "ERROR", "CRITICAL")]


SENT = 2 * (2 + 3)  # two rounds of two single sends and a batch of three


def test_an_unresolved_key_vault_reference_leaves_telemetry_off_with_one_warning(
    app_env: AppUnderTest, tmp_path: Path
) -> None:
    reference = "@Microsoft.KeyVault(SecretUri=https://orders-vault.vault.azure.net/secrets/ai-connection/)"

    report, records = run_child(app_env, tmp_path, {"APPLICATIONINSIGHTS_CONNECTION_STRING": reference})

    assert report["statuses"] == [202, 202, 200] * 2
    assert report["handled"] == sum(succeeded for _, succeeded, _ in report["passes"]) == SENT
    [warning] = warnings_in(records)
    assert "telemetry off" in warning["message"]
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in warning["message"]
    assert not [r for r in records if "orders-vault" in r["message"]]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unreachable(setting: str, port: int) -> dict[str, str]:
    """Telemetry settings that export to a closed port on 127.0.0.1."""
    if setting == "OTEL_EXPORTER_OTLP_ENDPOINT":
        return {setting: f"http://127.0.0.1:{port}", "OTEL_EXPORTER_OTLP_TIMEOUT": "3"}
    return {
        setting: f"InstrumentationKey={uuid.UUID(int=16)};IngestionEndpoint=https://127.0.0.1:{port}/",
        # The distro's own traffic (statsbeat, control plane, the VM metadata lookup) stays off.
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
        "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "azure_app_service",
        "OTEL_TRACES_SAMPLER": "always_on",
    }


@pytest.mark.parametrize(
    ("setting", "exporter"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "opentelemetry.exporter"),
        ("APPLICATIONINSIGHTS_CONNECTION_STRING", "azure.monitor.opentelemetry.exporter"),
    ],
)
def test_an_unreachable_exporter_costs_one_warning_and_no_send_or_pass(
    app_env: AppUnderTest, tmp_path: Path, setting: str, exporter: str
) -> None:
    port = closed_port()

    report, records = run_child(app_env, tmp_path, unreachable(setting, port))

    assert report["statuses"] == [202, 202, 200] * 2
    assert report["handled"] == sum(succeeded for _, succeeded, _ in report["passes"]) == SENT
    [warning] = warnings_in(records)
    assert f"telemetry export failed ({setting})" in warning["message"]
    assert str(port) not in warning["message"]
    # The exporter did try, and fail: its own records, which name the endpoint, went on at DEBUG.
    failed = [r for r in records if r["logger"].startswith(exporter) and f"port={port}" in r["message"]]
    assert failed and {r["level"] for r in failed} == {"DEBUG"}


def test_a_pass_ends_while_an_export_hangs(app_env: AppUnderTest, tmp_path: Path) -> None:
    # A collector that takes the request and never answers: the export waits out its 30 s timeout.
    report, records = run_child(
        app_env, tmp_path, {"TEST_HUNG_COLLECTOR": "1", "OTEL_EXPORTER_OTLP_TIMEOUT": "30"}
    )

    assert report["handled"] == SENT
    # Each pass ended (and the next sends were answered) while an export request was held unanswered.
    assert all(held >= 1 for held in report["held_when_pass_ended"]), report
    assert report["statuses"] == [202, 202, 200] * 2
    assert len(warnings_in(records)) <= 1


def test_a_configuration_error_is_logged_without_the_settings_values() -> None:
    env = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=k-1234;IngestionEndpoint=https://ingest.example",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cr3t-value",
        "SQS_OUTPUT_QUEUE": "orders",
    }
    connection = env["APPLICATIONINSIGHTS_CONNECTION_STRING"]
    error = f"bad: {connection}, api-key=s3cr3t-value, orders"

    logged = _without_values(error, env)

    assert "k-1234" not in logged and "ingest.example" not in logged and "s3cr3t" not in logged
    assert logged.endswith(", orders")  # not a telemetry setting
    assert "<APPLICATIONINSIGHTS_CONNECTION_STRING>" in logged
