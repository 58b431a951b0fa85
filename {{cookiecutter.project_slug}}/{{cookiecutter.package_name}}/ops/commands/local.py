"""The local commands: ``create-queues``, ``emulator``, ``smoke``, ``samples``. They read
``local.settings.json`` the way ``func start`` does; the last three run tools from ``local_dev``,
which is not deployed.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ...engine.settings import Settings
from .common import EXIT_OK, BadInput, emit, resolve_queue
from .queues import send_in_chunks

if TYPE_CHECKING:
    from .common import Commands


def add_local_settings_options(
    parser: argparse.ArgumentParser,
    *,
    endpoint: bool = True,
    endpoint_help: str = "SQS endpoint (default: AWS_ENDPOINT_URL, else AWS)",
) -> None:
    parser.add_argument(
        "--settings", help="settings file (default: ./local.settings.json if present; '' for none)"
    )
    if endpoint:
        parser.add_argument("--endpoint-url", help=endpoint_help)


def local_settings(args: argparse.Namespace) -> Settings:
    """The settings ``func start`` would see, pointed at ``--endpoint-url`` when given."""
    from ...engine.aws_session import reset_clients
    from ...engine.settings import local_settings_path, use_local_settings

    endpoint = {"AWS_ENDPOINT_URL": args.endpoint_url, "AWS_ENDPOINT_URL_SQS": None}
    settings = use_local_settings(local_settings_path(args.settings), endpoint if args.endpoint_url else {})
    reset_clients()  # clients made before read other settings
    return settings


def register_create_queues(commands: Commands) -> None:
    parser = commands.add_parser(
        "create-queues",
        help="create the DLQ, the input queue with its redrive policy, and the output queue (idempotent)",
    )
    add_local_settings_options(parser)
    parser.set_defaults(run=run_create_queues)


def run_create_queues(args: argparse.Namespace) -> int:
    from ...engine.aws_session import sqs_client
    from ...engine.queues import ensure_queues

    settings = local_settings(args)
    if not settings.dlq:
        raise BadInput("SQS_DLQ is not set: the input queue needs a dead-letter queue")
    queues = ensure_queues(sqs_client(settings), settings)
    emit({**asdict(queues), "max_receive_count": settings.max_receive_count})
    return EXIT_OK


def local_dev_tool(module: str) -> Any:
    try:
        return importlib.import_module(f"{__package__.rpartition('.')[0]}.local_dev.{module}")
    except ModuleNotFoundError as error:
        raise BadInput(
            f"this is a local development command and needs requirements-dev.txt ({error}); "
            "local_dev is not deployed to Azure"
        ) from None


def register_emulator(commands: Commands) -> None:
    parser = commands.add_parser(
        "emulator", help="an SQS emulator (moto) on 127.0.0.1 with the app's queues, until Ctrl-C"
    )
    parser.add_argument("--port", type=int, default=4566, help="port (default 4566; 0: any free)")
    add_local_settings_options(parser, endpoint=False)
    parser.add_argument("--verbose", action="store_true", help="print every request")
    parser.set_defaults(
        run=lambda args: local_dev_tool("emulator").serve(args.port, args.settings, args.verbose)
    )


def register_smoke(commands: Commands) -> None:
    parser = commands.add_parser(
        "smoke", help="the app's whole flow on an embedded SQS emulator, ending with a summary"
    )
    add_local_settings_options(
        parser,
        endpoint_help="use this SQS endpoint (for example LocalStack's) with queues of the smoke's own, "
        "instead of an embedded emulator",
    )
    parser.add_argument("--verbose", action="store_true", help="show the app's logs")
    parser.set_defaults(
        run=lambda args: local_dev_tool("smoke").run_and_report(
            args.endpoint_url, args.settings, args.verbose
        )
    )


def register_samples(commands: Commands) -> None:
    parser = commands.add_parser("samples", help="put sample messages (and poison ones) on the input queue")
    parser.add_argument("--count", type=int, default=5, help="good messages (default 5)")
    parser.add_argument("--poison", type=int, default=1, help="poison messages (default 1)")
    add_local_settings_options(parser)
    parser.set_defaults(run=run_samples)


def run_samples(args: argparse.Namespace) -> int:
    from ...engine.aws_session import sqs_client
    from ...engine.producer import Sender

    samples = local_dev_tool("sample_messages")
    settings = local_settings(args)
    client = sqs_client(settings)
    url = resolve_queue(settings, "input")
    messages = samples.sample_messages(url, args.count, args.poison)
    return send_in_chunks(Sender(client, url, max_message_bytes=settings.max_message_bytes), url, messages)


REGISTER: list[Callable[[Commands], None]] = [
    register_create_queues,
    register_emulator,
    register_smoke,
    register_samples,
]
