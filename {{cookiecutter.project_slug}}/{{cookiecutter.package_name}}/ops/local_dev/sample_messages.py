"""Sample work for the trigger: messages that fit ``handler.WorkItem``, and poison ones.

``python -m <package> samples`` puts them on the input queue of the endpoint the
settings point at (``local.settings.json``: the local emulator or LocalStack); the
trigger drains them on its next tick. The smoke command sends the same ones.
When you change the message model, change these too.
"""

from __future__ import annotations

import json
import uuid

from ...engine.producer import OutgoingMessage
from ...engine.queues import is_fifo

GOOD_GROUP = "samples"
POISON_GROUP = "samples-poison"  # its own FIFO group, so it blocks no good message


def good_message(run: str, number: int) -> str:
    return json.dumps({"id": f"{run}-{number}", "action": "sample", "payload": {"number": number}})


def poison_message(run: str, number: int) -> str:
    """Valid JSON the handler refuses (no "action"): it fails on every receive, then goes to the DLQ."""
    return json.dumps({"id": f"{run}-poison-{number}", "payload": {}})


def new_run_id() -> str:
    """Makes bodies unique per run, so FIFO content-based deduplication never drops a rerun."""
    return uuid.uuid4().hex[:8]


def sample_messages(queue_url: str, count: int, poison: int) -> list[OutgoingMessage]:
    """``count`` good and ``poison`` poison messages for the queue, in FIFO groups of their own on FIFO."""
    fifo = is_fifo(queue_url)
    run = new_run_id()
    good = [
        OutgoingMessage(good_message(run, n), group_id=GOOD_GROUP if fifo else None)
        for n in range(1, count + 1)
    ]
    bad = [
        OutgoingMessage(poison_message(run, n), group_id=POISON_GROUP if fifo else None)
        for n in range(1, poison + 1)
    ]
    return good + bad
