"""Handlers the CLI tests pass to ``drain --handler`` when the CLI runs in a child process."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from {{ cookiecutter.package_name }}.engine.consumer import SqsMessage


def record_slowly(message: SqsMessage) -> None:
    """Sleeps ``TEST_HANDLER_SECONDS``, then appends the body to ``TEST_RECORD_FILE``."""
    time.sleep(float(os.environ.get("TEST_HANDLER_SECONDS", "0")))
    with Path(os.environ["TEST_RECORD_FILE"]).open("a", encoding="utf-8") as record:
        record.write(message.body + "\n")


async def record_async(message: SqsMessage) -> None:
    """The same, as an ``async def``: the drain awaits it on its own event loop."""
    await asyncio.sleep(float(os.environ.get("TEST_HANDLER_SECONDS", "0")))
    with Path(os.environ["TEST_RECORD_FILE"]).open("a", encoding="utf-8") as record:
        record.write(message.body + "\n")
