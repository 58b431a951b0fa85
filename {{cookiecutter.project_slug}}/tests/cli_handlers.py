"""Handlers the CLI tests pass to ``drain --handler`` when the CLI runs in a child process."""

from __future__ import annotations

import os
import time
from pathlib import Path

from {{ cookiecutter.package_name }}.consumer import SqsMessage


def record_slowly(message: SqsMessage) -> None:
    """Sleeps ``TEST_HANDLER_SECONDS``, then appends the body to ``TEST_RECORD_FILE``."""
    time.sleep(float(os.environ.get("TEST_HANDLER_SECONDS", "0")))
    with Path(os.environ["TEST_RECORD_FILE"]).open("a", encoding="utf-8") as record:
        record.write(message.body + "\n")
