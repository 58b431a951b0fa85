"""SQS failing mid-drain: the loop survives, reports the errors, and loses nothing.

A small proxy on 127.0.0.1 stands between the real client and the emulator. It answers
some ReceiveMessage requests with an HTTP 500 and SQS's error document, as SQS does when
it has an internal failure, and passes everything else through untouched.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

from {{ cookiecutter.package_name }}.consumer import drain

from .conftest import AppUnderTest, MakeQueue, Recorder, queue_depth
from .test_consumer import FAST, send


class FailingProxy(ThreadingHTTPServer):
    def __init__(self, upstream: str, failures: int) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = urlsplit(upstream)
        self.failures_left = failures
        self.failed = 0
        self.lock = threading.Lock()

    def should_fail(self, target: str) -> bool:
        with self.lock:
            if target.endswith(".ReceiveMessage") and self.failures_left > 0:
                self.failures_left -= 1
                self.failed += 1
                return True
            return False

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Forward(BaseHTTPRequestHandler):
    server: FailingProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.server.should_fail(self.headers.get("X-Amz-Target", "")):
            error = {
                "__type": "com.amazonaws.sqs#InternalError",
                "message": "We encountered an internal error.",
            }
            self._answer(500, json.dumps(error).encode(), "application/x-amz-json-1.0")
            return
        upstream = http.client.HTTPConnection(
            self.server.upstream.hostname, self.server.upstream.port, timeout=60
        )
        upstream.request("POST", self.path, body, dict(self.headers))
        response = upstream.getresponse()
        self._answer(response.status, response.read(), response.getheader("Content-Type", ""))
        upstream.close()

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def failing_proxy(sqs_endpoint: str) -> Iterator[FailingProxy]:
    proxy = FailingProxy(sqs_endpoint, failures=1)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_a_drain_survives_sqs_errors_reports_them_and_loses_nothing(
    app_env: AppUnderTest, make_queue: MakeQueue, failing_proxy: FailingProxy
) -> None:
    queues = make_queue()
    bodies = [f"m-{n:02d}" for n in range(30)]
    send(app_env.client, queues.url, bodies)
    # One attempt per call: botocore does not retry, so every injected error reaches the loop.
    client = boto3.client(
        "sqs",
        endpoint_url=failing_proxy.url,
        region_name=app_env.settings.region,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    recorder = Recorder()

    summary = drain(client, queues.url, recorder.success, replace(FAST, max_concurrency=4))

    assert failing_proxy.failed == 1
    assert summary.sqs_errors == 1
    assert "InternalError" in summary.last_error
    assert summary.stopped_because == "queue_empty"  # one error is under the give-up count
    assert sorted(recorder.succeeded) == bodies
    assert queue_depth(app_env.client, queues.url) == 0
