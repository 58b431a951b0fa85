"""A tiny OTLP/HTTP collector on 127.0.0.1 for the tests: it takes POST /v1/traces and /v1/metrics,
decodes the protobuf, and keeps what it got."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span


@dataclass
class Received:
    spans: list[Span] = field(default_factory=list)
    # Metric name -> the data points' attributes and values, as plain Python.
    metrics: dict[str, list[tuple[dict[str, object], float]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class OtlpCollector:
    def __init__(self) -> None:
        self.received = Received()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    traces = ExportTraceServiceRequest.FromString(body)
                    with received.lock:
                        for resource in traces.resource_spans:
                            for scope in resource.scope_spans:
                                received.spans.extend(scope.spans)
                elif self.path == "/v1/metrics":
                    _keep_metrics(ExportMetricsServiceRequest.FromString(body), received)
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _keep_metrics(request: ExportMetricsServiceRequest, received: Received) -> None:
    with received.lock:
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        attributes = {a.key: _value(a.value) for a in point.attributes}
                        value = point.count if kind == "histogram" else _number(point)
                        received.metrics.setdefault(metric.name, []).append((attributes, value))


def _value(any_value: object) -> object:
    kind = any_value.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(any_value, kind) if kind else None


def _number(point: object) -> float:
    kind = point.WhichOneof("value")  # type: ignore[attr-defined]
    return float(getattr(point, kind))
