"""The Application Insights path: ``send`` then ``drain`` as child processes with the Bicep's two
settings (connection string, and ``Authorization=AAD`` with the identity's client ID).

The distro exports to an ingestion endpoint on 127.0.0.1 that records what arrives; the token comes
from the managed-identity endpoint on 127.0.0.1. The ingestion speaks HTTPS with a certificate made
here (azure-core sends a bearer token over TLS only), trusted through ``REQUESTS_CA_BUNDLE``. Nothing
leaves the machine: statsbeat, the control plane and the Azure VM resource detector (IMDS) are
switched off by their own settings."""

from __future__ import annotations

import gzip
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.engine.queues import queue_name
from {{ cookiecutter.package_name }}.engine.telemetry import names

from ..conftest import AppUnderTest
from .conftest import USER_ASSIGNED_CLIENT_ID
from .identity_endpoint import ManagedIdentityEndpoint
from .loopback_tls import loopback_certificate

# Drains exported over TLS with the identity: not the inner loop.
pytestmark = pytest.mark.slow

APP_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "{{ cookiecutter.package_name }}"
INSTRUMENTATION_KEY = "00000000-0000-4000-8000-000000000016"


class Ingestion:
    """Application Insights' track endpoint, on 127.0.0.1: keeps each envelope and its request's auth."""

    def __init__(self, directory: Path) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        ingestion = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                envelopes = json.loads(body)
                ingestion.envelopes.extend(envelopes)
                ingestion.authorizations.append(self.headers.get("Authorization", ""))
                answer = json.dumps(
                    {"itemsReceived": len(envelopes), "itemsAccepted": len(envelopes), "errors": []}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(answer.encode())

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.certificate, key = loopback_certificate(directory)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self.certificate, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"https://{host!s}:{port}/"

    def names(self, kind: str) -> set[str]:
        """Span names (kind ``RequestData``/``RemoteDependencyData``) or metric names (``MetricData``)."""
        found: set[str] = set()
        for envelope in self.envelopes:
            data = envelope.get("data", {})
            if data.get("baseType") != kind:
                continue
            base = data.get("baseData", {})
            if kind == "MetricData":
                found |= {metric["name"] for metric in base.get("metrics", [])}
            else:
                found.add(base.get("name", ""))
        return found


@pytest.fixture
def ingestion(tmp_path: Path) -> Iterator[Ingestion]:
    started = Ingestion(tmp_path)
    try:
        yield started
    finally:
        started.server.shutdown()
        started.server.server_close()


def test_send_and_drain_export_to_application_insights_with_the_managed_identity(
    app_env: AppUnderTest, ingestion: Ingestion, tmp_path: Path
) -> None:
    queue = queue_name(app_env.queues.input_url)
    with ManagedIdentityEndpoint(
        user_assigned={USER_ASSIGNED_CLIENT_ID: "c0ffee00-0000-4000-8000-000000000016"}
    ) as identity:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            **identity.environment(),
            "APPLICATIONINSIGHTS_CONNECTION_STRING": (
                f"InstrumentationKey={INSTRUMENTATION_KEY};IngestionEndpoint={ingestion.url}"
            ),
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": (
                f"ClientId={USER_ASSIGNED_CLIENT_ID};Authorization=AAD"
            ),
            "AZURE_MANAGED_IDENTITY_CLIENT_ID": USER_ASSIGNED_CLIENT_ID,
            # Keep the distro on this machine, and every trace.
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
            "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
            "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "azure_app_service",
            "OTEL_TRACES_SAMPLER": "always_on",
            "REQUESTS_CA_BUNDLE": str(ingestion.certificate),
            "TEST_RECORD_FILE": str(tmp_path / "handled.txt"),
        }
        group = ["--group-id", "g"] if app_env.queues.input_url.endswith(".fifo") else []
        for command in (
            ["send", "--queue", "input", "--body", '{"id": "ai-1"}', *group],
            ["drain", "--handler", "tests.cli_handlers:record_slowly", "--linger-seconds", "0"],
        ):
            result = subprocess.run(
                [sys.executable, "-m", PACKAGE, *command],
                cwd=APP_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert result.returncode == 0, result.stderr

    # CONSUMER spans are requests in Application Insights; the others, dependencies.
    assert f"process {queue}" in ingestion.names("RequestData")
    assert {f"send {queue}", f"drain {queue}"} <= ingestion.names("RemoteDependencyData")
    assert {names.MESSAGES_RECEIVED, names.MESSAGES_HANDLED, names.QUEUE_VISIBLE} <= ingestion.names(
        "MetricData"
    )
    # Sent with the identity's token: local auth is off on the Bicep's Application Insights.
    monitor_tokens = [
        r for r in identity.requests if (r.resource or "").startswith("https://monitor.azure.com")
    ]
    assert monitor_tokens and {r.client_id for r in monitor_tokens} == {USER_ASSIGNED_CLIENT_ID}
    issued = {f"Bearer {r.token}" for r in monitor_tokens}  # one per process: send, then drain
    assert ingestion.authorizations and set(ingestion.authorizations) <= issued
