"""A Docker-free SQS endpoint for local runs: moto's server on 127.0.0.1, with the app's queues.

``python -m <package> emulator`` starts it on 127.0.0.1:4566, the endpoint that
``local.settings.json`` points at, creates the queues with ``queues.ensure_queues``,
prints what to run next, and serves until Ctrl-C or SIGTERM. It keeps nothing.

moto is a development dependency (requirements-dev.txt): it never ships to Azure,
so it is imported only when an emulator starts.

moto differs from SQS in three ways the app relies on; ``make_moto_faithful`` fixes
them here, at the emulator's edge, and tests/test_emulator_fidelity.py proves each on an
unpatched moto:

- FIFO: moto keeps a message in its group's lock after its visibility ends, until a
  receive passes it; then it skips the group's earlier messages and hands out a later one.
  A group is locked by its messages in flight, and only by those.
- Concurrent calls: moto's receive, delete and visibility change read and rewrite a
  queue's messages without a lock, so two receives at once can hand out one message twice.
  ``moto_sqs_fixes`` puts them under one lock; a long poll scans under it, then waits
  outside it and scans afresh.
- Refusals: moto sends a message SQS refuses (11 attributes, a reserved attribute name, a
  malformed group or deduplication ID, a character SQS does not take); ``moto_sqs_refusals``
  refuses them as SQS does.

And moto's CloudFormation and EventBridge differ from AWS where the app's stack and its message
sources meet them (``moto_service_fixes``): an ``AWS::NoValue`` list item kept as a null, a
parameter's previous value lost when it took its default, an event sent to a queue without its account.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from ...engine.aws_session import reset_clients, sqs_client
from ...engine.queues import QueueSet, ensure_queues, queue_name
from ...engine.settings import (
    AWS_ENDPOINT_URL,
    LOCAL_SETTINGS_FILE,
    Settings,
    SettingsError,
    local_settings_path,
    local_settings_values,
    use_local_settings,
)
from .azurite import AZURITE_VERSION
from .moto_service_fixes import fix_moto_services
from .moto_sqs_fixes import fix_moto_sqs
from .moto_sqs_refusals import refuse_like_sqs

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 4566
MOTO_ACCOUNT_ID = "123456789012"
AZURITE_COMMAND = f"npx --yes azurite@{AZURITE_VERSION} --silent --location .azurite --skipApiVersionCheck"
# Against an emulator, whatever the shell holds: test keys, no profile, one endpoint.
EMULATOR_ENVIRONMENT: dict[str, str | None] = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_DEFAULT_PROFILE": None,
    "AWS_ENDPOINT_URL_SQS": None,
    "AWS_AUTH_MODE": "default_chain",
}


class EmulatorUnavailable(RuntimeError):
    """The emulator cannot start; the message says what to do."""


@dataclass
class Emulator:
    server: Any
    url: str

    def stop(self) -> None:
        self.server.stop()


def start_emulator(
    port: int = DEFAULT_PORT, *, log_requests: bool = False, start_timeout_seconds: float = 30.0
) -> Emulator:
    """moto's server on 127.0.0.1:``port`` (0: a free port), serving in a thread."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        raise EmulatorUnavailable(
            f"moto is not installed ({error}); it is a development dependency: "
            "pip install -r requirements-dev.txt"
        ) from None
    if port:
        _check_port_is_free(port)
    make_moto_faithful()
    # werkzeug prints every request unless its logger says otherwise.
    logging.getLogger("werkzeug").setLevel(logging.INFO if log_requests else logging.WARNING)
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    # start() waits forever if the server thread fails to bind; bound the wait.
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(start_timeout_seconds)
    if starter.is_alive():
        raise EmulatorUnavailable(f"moto's server did not start on {LOOPBACK}:{port}")
    host, bound_port = server.get_host_and_port()
    return Emulator(server, f"http://{host}:{bound_port}")


def make_moto_faithful() -> None:
    """Patch moto in this process where it differs from AWS (the module's doc)."""
    from moto.sqs import models

    fix_moto_sqs()  # several callers at once: locks, a long poll outside them, no per-message scans
    refuse_like_sqs()  # what SQS refuses a sender, moto refuses too
    fix_moto_services()  # CloudFormation and EventBridge, where the stack and its sources meet them
    if getattr(models, "_faithful_to_sqs", False):
        return
    setattr(models.Queue, "pending_message_groups", property(_groups_in_flight))  # noqa: B010
    setattr(models, "_faithful_to_sqs", True)  # noqa: B010


def _groups_in_flight(queue: Any) -> set[str]:
    return {m.group_id for m in queue.pending_messages if m.group_id is not None and not m.visible}


def _check_port_is_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if os.name != "nt":  # as the server binds; on Windows this flag would allow a double bind
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as error:
            raise EmulatorUnavailable(
                f"{LOOPBACK}:{port} is in use ({error.strerror}). Is LocalStack or another emulator "
                "running? Stop it, or choose another port with --port."
            ) from None


def create_local_queues(
    endpoint_url: str, settings_path: Path | None, overrides: dict[str, str | None] | None = None
) -> tuple[Settings, QueueSet]:
    """Point this process at ``endpoint_url`` with test keys, and create the app's queues there."""
    settings = use_local_settings(
        settings_path, {**EMULATOR_ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint_url, **(overrides or {})}
    )
    if not settings.dlq:
        raise SettingsError("SQS_DLQ is not set: the input queue needs a dead-letter queue")
    reset_clients()
    return settings, ensure_queues(sqs_client(settings), settings)


def serve(port: int, settings_file: str | None, verbose: bool) -> int:
    """Run the emulator with the app's queues until SIGINT or SIGTERM; ``python -m <package> emulator``."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        settings_path = local_settings_path(settings_file)
        emulator = start_emulator(port, log_requests=verbose)
    except (EmulatorUnavailable, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        settings, queues = create_local_queues(emulator.url, settings_path)
        print(banner(emulator.url, settings, queues, configured_endpoint(settings_path)), flush=True)
        while not stop.wait(0.5):
            pass
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"error: could not create the queues: {error}", file=sys.stderr)
        return 1
    finally:
        emulator.stop()
    print("SQS emulator stopped.", flush=True)
    return 0


def configured_endpoint(settings_path: Path | None) -> str:
    if settings_path is None:
        return ""
    return AWS_ENDPOINT_URL.read(local_settings_values(settings_path))


def banner(url: str, settings: Settings, queues: QueueSet, configured: str) -> str:
    package = __package__.split(".")[0]  # the app's package: python -m <package>
    port = urlsplit(url).port
    elsewhere = bool(configured) and urlsplit(configured).port != port
    # Where local.settings.json points elsewhere, the commands below are given this emulator's URL (a
    # variable set in the shell wins over the file).
    here = f"AWS_ENDPOINT_URL=http://{LOOPBACK}:{port} " if elsewhere else ""
    lines = [
        f"SQS emulator (moto) listening on {url}, account {MOTO_ACCOUNT_ID}, region {settings.region}.",
        "Queues:",
        f"  input   {queue_name(queues.input_url)}  (to the DLQ after {settings.max_receive_count} receives)",
        f"  DLQ     {queue_name(queues.dlq_url)}",
        f"  output  {queue_name(queues.output_url)}",
    ]
    if elsewhere:
        lines.append(
            f"Note: local.settings.json sets AWS_ENDPOINT_URL={configured}; "
            f"func start reaches this emulator only at http://localhost:{port}."
        )
    lines += [
        "Next, each in its own terminal, in this folder with the venv active:",
        f"  {AZURITE_COMMAND}   # storage for the timer trigger",
        "  func start   # the app, on this emulator",
        f"  {here}python -m {package} samples   # work for the trigger",
        f"  {here}python -m {package} stats --settings {LOCAL_SETTINGS_FILE}"
        "   # the queues' depths (the queue commands read the file only when told)",
        f'  SQS_TEST_ENDPOINT_URL=http://{LOOPBACK}:{port} python -m pytest -m "not slow"'
        "   # the fast tests, on this emulator (all of them: python -m pytest)",
        "Ctrl-C stops the emulator; its queues and messages are gone then.",
    ]
    return "\n".join(lines)
