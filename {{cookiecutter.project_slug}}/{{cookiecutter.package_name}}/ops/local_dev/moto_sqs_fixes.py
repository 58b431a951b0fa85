"""Fixes for moto's SQS where several drains share one queue, applied where the embedded emulator starts.

moto 5.2's SQS backend was written for one caller at a time; its server answers each request
in its own thread. Seen with three drains on one queue:

- **Races.** A receive reads the queue, then marks what it hands out; a delete rebuilds the
  message list and puts it back. Two at once: a message deleted by one drain comes back (the
  other's rebuilt list still holds it), and on FIFO a second receive hands out the next message
  of a group the first has just taken (order broken). Fix: one lock around every call that reads
  or changes messages. A receive holds it only while it scans; its long poll waits outside it,
  woken by a send, so one waiting drain never stalls the others.
- **Cost.** Each received message's retention check, and each sent message's
  ``ContentBasedDeduplication`` read, compute every attribute of the queue, its message counts
  included: a scan of the queue per message; and every scan asks each message for the time through
  a clock that builds two datetimes. A receive of 10 from 1,500 messages took over a second here,
  sending 2,000 messages 110 s, and drains ran out of budget with most of the queue left. Fix: read
  the one attribute needed, and the time from ``time.time()`` (the same value).

What moto decides is unchanged; only when and how fast.

These are patches of moto's private internals, proven on moto ``PROVEN_MOTO_VERSION`` only (the version
requirements-dev.txt pins). On any other version, or if the internals they replace are gone, they refuse to
load with an error that names both versions, rather than patch something they were never proven on.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import version
from types import ModuleType
from typing import Any

_APPLIED = "_sqs_app_fixes"
# Every SQSBackend call that reads or changes a queue's messages.
LOCKED_CALLS = (
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
    "get_queue_attributes",
    "set_queue_attributes",
    "delete_queue",
)
# Longest a waiting receive sleeps before it looks again (a send wakes it at once).
RECEIVE_RECHECK_SECONDS = 0.1
# The one moto release these patches are proven on (requirements-dev.txt pins it).
PROVEN_MOTO_VERSION = "5.2.5"
# What receive_message's replacement relies on: its leading parameters, in order.
RECEIVE_PARAMETERS = ["self", "queue_name", "count", "wait_seconds_timeout"]


class UnprovenMotoError(RuntimeError):
    """The installed moto is not the one these patches are proven on, or its internals moved."""


def check_moto(installed: str, models: ModuleType) -> None:
    """Refuse, naming both versions, unless moto is ``PROVEN_MOTO_VERSION`` with the internals patched."""
    advice = (
        f"install moto[server]=={PROVEN_MOTO_VERSION} (requirements-dev.txt), or prove the patches in "
        "local_dev/moto_sqs_fixes.py on the new version and raise PROVEN_MOTO_VERSION"
    )
    if installed != PROVEN_MOTO_VERSION:
        raise UnprovenMotoError(
            f"moto {installed} is installed, but the embedded emulator's SQS patches are proven on moto "
            f"{PROVEN_MOTO_VERSION} only: {advice}"
        )
    backend: Any = getattr(models, "SQSBackend", None)
    wanted = [*LOCKED_CALLS, "receive_message", "is_message_valid_based_on_retention_period"]
    missing = [name for name in wanted if not callable(getattr(backend, name, None))]
    missing += [name for name in ("unix_time", "unix_time_millis") if not hasattr(models, name)]
    if not missing:
        parameters = list(inspect.signature(backend.receive_message).parameters)
        if parameters[: len(RECEIVE_PARAMETERS)] != RECEIVE_PARAMETERS:
            missing.append(f"receive_message{tuple(RECEIVE_PARAMETERS)}")
    if missing:
        raise UnprovenMotoError(
            f"moto {installed}'s SQS internals are not those of moto {PROVEN_MOTO_VERSION} that the "
            f"patches replace (missing: {', '.join(missing)}): {advice}"
        )


def fix_moto_sqs() -> None:
    """Idempotent; moto is imported here, when an emulator starts (it is a dev dependency)."""
    from moto.core.utils import unix_time as slow_unix_time
    from moto.sqs import models

    if getattr(models, _APPLIED, False):
        return
    check_moto(version("moto"), models)
    messages_lock = threading.RLock()
    backend = models.SQSBackend

    def unix_time(dt: datetime | None = None) -> float:
        return time.time() if dt is None else float(slow_unix_time(dt))

    def unix_time_millis(dt: datetime | None = None) -> float:
        return unix_time(dt) * 1000.0

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_seconds = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_seconds + message.sent_timestamp / 1000 > unix_time())

    def locked(call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)
        def under_lock(*args: Any, **kwargs: Any) -> Any:
            with messages_lock:
                return call(*args, **kwargs)

        return under_lock

    scan = backend.receive_message

    @functools.wraps(scan)
    def receive_message(
        self: Any, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any
    ) -> list[Any]:
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with messages_lock:  # one look at the queue, with no wait in it
                result: list[Any] = scan(self, queue_name, count, 0, *args)
            remaining = deadline - time.monotonic()
            if result or remaining <= 0:
                return result
            condition = self.get_queue(queue_name)._messages_lock  # notified by every send
            with condition:
                condition.wait(timeout=min(RECEIVE_RECHECK_SECONDS, remaining))

    clock: dict[str, Any] = {"unix_time": unix_time, "unix_time_millis": unix_time_millis}
    for name, value in clock.items():
        setattr(models, name, value)
    for name in LOCKED_CALLS:
        setattr(backend, name, locked(getattr(backend, name)))
    calls: dict[str, Any] = {
        "receive_message": receive_message,
        "is_message_valid_based_on_retention_period": is_message_valid_based_on_retention_period,
    }
    for name, call in calls.items():
        setattr(backend, name, call)
    setattr(models, _APPLIED, True)
