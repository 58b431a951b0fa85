"""A loopback HTTP proxy in front of the SQS endpoint that fails or delays chosen operations.

It stands between a real boto3 client and the emulator and passes every request through
untouched, except that it can answer some requests of an operation with an HTTP 500 and
SQS's error document (as SQS does on an internal failure), or hold them for a while
before passing them on (a slow call, as across a congested WAN). Requests are served in
parallel, one thread each, like SQS.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from mypy_boto3_sqs import SQSClient


class SqsProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, upstream: str, *, fail: dict[str, int] | None = None, delay: dict[str, float] | None = None
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.failures_left = dict(fail or {})
        self.delay = dict(delay or {})
        self.failed = 0
        self.lock = threading.Lock()

    def should_fail(self, operation: str) -> bool:
        with self.lock:
            if self.failures_left.get(operation, 0) > 0:
                self.failures_left[operation] -= 1
                self.failed += 1
                return True
            return False

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def client(self, region: str, *, attempts: int = 1, pool: int = 100) -> SQSClient:
        """A client through this proxy; one attempt per call, so every injected error reaches the app."""
        return boto3.client(
            "sqs",
            endpoint_url=self.url,
            region_name=region,
            config=Config(
                retries={"mode": "standard", "total_max_attempts": attempts}, max_pool_connections=pool
            ),
        )


class _Forward(BaseHTTPRequestHandler):
    server: SqsProxy
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
        if self.server.should_fail(operation):
            error = {
                "__type": "com.amazonaws.sqs#InternalError",
                "message": "We encountered an internal error.",
            }
            self._answer(500, json.dumps(error).encode(), "application/x-amz-json-1.0")
            return
        time.sleep(self.server.delay.get(operation, 0.0))
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
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


@contextmanager
def sqs_proxy(
    upstream: str, *, fail: dict[str, int] | None = None, delay: dict[str, float] | None = None
) -> Iterator[SqsProxy]:
    proxy = SqsProxy(upstream, fail=fail, delay=delay)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
