"""Two fixes for the cost of moto's SQS calls, applied where the embedded emulator starts.

moto 5.2 scans the whole queue per message, in two ways:

- its receive checks each message's retention period with ``get_queue_attributes``, and its
  send reads ``ContentBasedDeduplication`` from ``Queue.attributes``: both compute every
  attribute of the queue, the message counts included, a scan of the queue each;
- each scan asks every message for the time, and moto's clock builds two datetimes per call.

A receive of 10 from a queue of 1,500 messages took over a second here, sending 2,000
messages took 110 s, and several drains at once ran out of budget with most of the queue
left. The fixes read the one attribute needed, and the time from ``time.time()`` (the same
value: seconds since the epoch); what moto decides is unchanged.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

_PATCHED = "_sqs_app_speed"


def speed_up_moto_sqs() -> None:
    """Idempotent; moto is imported here, when an emulator starts (it is a dev dependency)."""
    from moto.core.utils import unix_time as slow_unix_time
    from moto.sqs import models

    if getattr(models, _PATCHED, False):
        return

    def unix_time(dt: datetime | None = None) -> float:
        return time.time() if dt is None else float(slow_unix_time(dt))

    def unix_time_millis(dt: datetime | None = None) -> float:
        return unix_time(dt) * 1000.0

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_seconds = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_seconds + message.sent_timestamp / 1000 > unix_time())

    replacements = {"unix_time": unix_time, "unix_time_millis": unix_time_millis, _PATCHED: True}
    for name, value in replacements.items():
        setattr(models, name, value)
    models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
