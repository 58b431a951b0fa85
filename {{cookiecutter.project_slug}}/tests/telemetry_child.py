"""Sends and drains in a child process whose telemetry settings a test chooses (OpenTelemetry allows
one set of providers per process, and the test process has its own).

``python -m tests.telemetry_child <log file>``, from the app's folder, with the app's settings in the
environment (the send functions write to the queue the drain reads). It calls ``send_message`` twice
and ``send_message_batch`` once (3 items), drains, waits for the exporters to try, does it all
again, and prints what it saw as JSON. Every log record of the process, until it exits (the
exporters flush at exit), is written to the log file, one JSON object a line.

With ``TEST_HUNG_COLLECTOR=1`` it first starts an OTLP endpoint of its own that takes requests and
never answers, reports whether one of them was still held when each pass ended (a pass that ends
while an export hangs was not blocked by it), and exits without the exporters' flush.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import azure.functions as func

from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage
from {{ cookiecutter.package_name }}.engine.queues import is_fifo
from {{ cookiecutter.package_name }}.engine.runtime import drain_input_queue


class JsonLines(logging.Handler):
    def __init__(self, path: Path) -> None:
        super().__init__(logging.DEBUG)
        self.file = path.open("a", encoding="utf-8")
        self.lock_ = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = {"level": record.levelname, "logger": record.name, "message": record.getMessage()}
        with self.lock_:
            self.file.write(json.dumps(line) + "\n")
            self.file.flush()


class HungCollector:
    """Accepts connections and reads what comes, never answering: a collector that hangs."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.held = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        host, port = self.server.getsockname()[:2]
        return f"http://{host}:{port}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        with self.lock:
            self.held += 1
        try:
            while connection.recv(65536):
                pass
        except OSError:
            pass
        with self.lock:
            self.held -= 1


def main(log_file: str) -> None:
    handler = JsonLines(Path(log_file))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    # The exporters' own records, which the app turns to DEBUG: kept, to show the exports failed.
    for name in ("opentelemetry", "azure.monitor"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    hung = HungCollector() if os.environ.get("TEST_HUNG_COLLECTOR") else None
    if hung:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = hung.endpoint

    from function_app import app

    functions: dict[str, Callable[..., Any]] = {
        f.get_function_name(): f.get_user_function() for f in app.get_functions()
    }
    params = {"group_id": "telemetry"} if is_fifo(os.environ["SQS_OUTPUT_QUEUE"]) else {}
    handled: list[str] = []

    def handle(message: SqsMessage) -> None:
        handled.append(message.body)

    report: dict[str, Any] = {"statuses": [], "passes": [], "held_when_pass_ended": []}
    for round_ in range(2):
        for n in range(2):
            body = json.dumps({"id": f"one-{round_}-{n}"}).encode()
            request = func.HttpRequest(method="POST", url="/api/messages", body=body, params=params)
            report["statuses"].append(functions["send_message"](request).status_code)
        items = json.dumps([{"id": f"batch-{round_}-{n}"} for n in range(3)]).encode()
        request = func.HttpRequest(method="POST", url="/api/messages/batch", body=items, params=params)
        report["statuses"].append(functions["send_message_batch"](request).status_code)
        summary = drain_input_queue(handler=handle)
        report["passes"].append([summary.received, summary.succeeded, summary.failed])
        if hung:
            with hung.lock:
                report["held_when_pass_ended"].append(hung.held)
        time.sleep(float(os.environ.get("TEST_EXPORT_WAIT_SECONDS", "1")))
    report["handled"] = len(handled)
    print(json.dumps(report), flush=True)
    if hung:
        # The exporters' flush at exit would wait out their timeout: what is shown is shown.
        os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
