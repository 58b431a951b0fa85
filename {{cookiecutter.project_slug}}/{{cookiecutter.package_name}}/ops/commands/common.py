"""What every command shares: exit codes, output, the app's settings, queues by role."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...engine.settings import LOCAL_SETTINGS_FILE, Settings, SettingsError

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0
EXIT_PARTLY = 1
EXIT_BAD_INPUT = 2

Run = Callable[[argparse.Namespace], int]


class BadInput(ValueError):
    """The command line or a file it names is wrong; the message says how."""


def emit(document: Any) -> None:
    print(json.dumps(document, indent=2, default=str))


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def settings_with(overrides: dict[str, object | None]) -> Settings:
    """The app's settings, with command-line values taking the place of app settings.

    Going through ``Settings.from_env`` keeps one set of checks; errors name the setting.
    """
    env = dict(os.environ)
    env.update({name: str(value) for name, value in overrides.items() if value is not None})
    return Settings.from_env(env)


def add_settings_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings",
        metavar="FILE",
        help=f"fill the environment from FILE (e.g. {LOCAL_SETTINGS_FILE}) as func start does "
        "(default: the environment only, as in Azure)",
    )


def queue_settings(args: argparse.Namespace, overrides: dict[str, object | None]) -> Settings:
    """The settings of a queue command: the environment, as the functions read it in Azure, or filled
    from ``--settings FILE`` the way ``func start`` fills it.

    Never ./local.settings.json unasked: its emulator endpoint and test keys would also fill an
    operator's shell that names real queues, and a command would reach the emulator instead of AWS.
    """
    from ...engine.aws_session import reset_clients
    from ...engine.settings import local_settings_path, use_local_settings

    if args.settings:
        given = {name: str(value) for name, value in overrides.items() if value is not None}
        settings = use_local_settings(local_settings_path(args.settings), given)
        reset_clients()  # clients made before read other settings
        return settings
    with settings_file_hint():
        return settings_with(overrides)


@contextmanager
def settings_file_hint() -> Iterator[None]:
    """A setting missing from the environment, beside ./local.settings.json: say that the command did
    not read that file, and how to make it."""
    try:
        yield
    except SettingsError as error:
        if not Path(LOCAL_SETTINGS_FILE).is_file():
            raise
        raise SettingsError(
            f"{error} This command reads the environment, as the app does in Azure, not "
            f"{LOCAL_SETTINGS_FILE}: to use it (the local emulator's), add --settings {LOCAL_SETTINGS_FILE}"
        ) from None


def resolve_queue(settings: Settings, which: str) -> str:
    """``input``, ``output`` or ``dlq`` as configured, or a queue name or URL as given."""
    from ...engine.aws_session import sqs_client
    from ...engine.queues import dead_letter_queue_url, queue_url

    client = sqs_client(settings)
    configured = {"input": settings.input_queue, "output": settings.output_queue, "dlq": settings.dlq}
    if which == "dlq" and not settings.dlq:
        found = dead_letter_queue_url(client, queue_url(client, settings.input_queue))
        if not found:
            raise BadInput("SQS_DLQ is not set and the input queue has no redrive policy")
        return found
    return queue_url(client, configured.get(which, which))
