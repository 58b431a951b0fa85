"""The ops CLI: ``python -m <package> COMMAND``.

- queue commands (``commands/queues.py``): ``drain``, ``send``, ``stats``, ``redrive``;
- local commands (``commands/local.py``): ``create-queues``, ``emulator``, ``smoke``, ``samples``;
- ``idempotency purge`` (``commands/idempotency.py``);
- ``costs`` (``commands/costs.py``): latency and a month's bill of the delivery configuration.

Each command prints one JSON document on stdout, and writes progress and errors on stderr.
Exit codes: 0 done; 1 done in part (messages SQS refused to take or delete, SQS kept failing); 2 bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from ..engine.settings import SettingsError
from .commands import costs, idempotency, local, queues
from .commands.common import EXIT_BAD_INPUT, EXIT_PARTLY, BadInput, Run, progress

MISSING_QUEUE_CODES = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
COMMANDS = [*queues.REGISTER, *local.REGISTER, *idempotency.REGISTER, *costs.REGISTER]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__.rpartition('.')[0]}",
        description="Operate the app's SQS queues with the app's own settings and code.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    run: Run = args.run
    try:
        return run(args)
    except (BadInput, SettingsError) as error:
        progress(f"error: {error}")
        return EXIT_BAD_INPUT
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in MISSING_QUEUE_CODES:
            progress(f"error: no such queue: {error}")
            return EXIT_BAD_INPUT
        progress(f"error: {error}")
        return EXIT_PARTLY
    except BotoCoreError as error:  # no endpoint, no credentials, ...
        progress(f"error: {error}")
        return EXIT_PARTLY
