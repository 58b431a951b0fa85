"""A drain that outlives a stalled timer: one delayed watchdog message on the drain-token queue.

The timer is the drain's only clock, and timers stop: all timers of a Flex Consumption app have stayed
stopped after a deployment, through restarts (azure-functions-host #11828). The dead man's switch alert
tells the owner; the watchdog keeps draining until they act, with no key or secret: it is a message on
the token queue (``SQS_SCALE_OUT_QUEUE``), run by the queue trigger that runs drain tokens.

- **Dormant.** The message is invisible until ``SQS_WATCHDOG_MISSED_TICKS`` + 1 occurrences of the
  timer's schedule (``engine/schedule.py``) from the last tick, and never less than two progress samples
  (``DORMANT_AT_LEAST_SECONDS``): a tick's long pass pushes it back only at its samples, 5 s apart, so a
  schedule of a few seconds (``delivery_latency`` derives ticks from 2 s) would otherwise wake it beside
  the live pass. Each tick reads the chain's record and, every other tick, pushes the message later: a
  visibility update by the pop receipt the last write returned, and a record write. While ticks come it
  never turns visible; it costs no invocation.
- **Standing in.** When no tick comes, it turns visible and ``drain_input_queue_on_token`` runs it
  (``stand_in``): it puts its successor, due at the schedule's next occurrence, then drains as a tick
  does, in the tick's slot (``pass_leases``), fanning out as a tick does. So it never drains beside a
  tick's pass, the cap holds, and it keeps the schedule's pace until a tick returns; that tick pushes
  the successor back, and the chain is dormant again.
- **One chain.** A row of the slots' table (row ``watchdog``, the input queue's partition) records the
  one message that is the watchdog, its pop receipt and when it is due; it is written only on its ETag,
  so of two writers (two ticks, a tick and a watchdog, a deployment's two instances) one wins, and the
  other deletes the message it put. A watchdog message the record does not name is dropped unrun and
  puts no successor, unless the record names one that was due before this one was put: that one was
  lost (its pass died, or its record could not be written), and this one takes the chain over.
- **Poison.** The successor is put before the pass drains, so a failed pass (its invocation fails, and
  with ``maxDequeueCount`` 1 the host moves it to the poison queue) leaves the chain whole.
- **The alert.** The watchdog's passes are invocations of ``drain_input_queue_on_token``, never of the
  timer function, so the dead man's switch (the timer's successful invocations) still fires, and each
  pass logs at WARNING that it drains in the timer's place.

A dormant message is invisible, so the scale controller, which peeks before it counts a Storage queue,
sees an empty queue and starts no instance for it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..queues import queue_name
from ..schedule import Schedule, parse_schedule
from ..storage_tables import with_table
from .drain_token import WatchdogToken
from .pass_leases import SAMPLE_EVERY_SECONDS, passes_table
from .token_queue import create_token_queue, token_queue_client

if TYPE_CHECKING:
    from azure.data.tables import TableClient
    from azure.storage.queue import QueueClient

    from ..settings import Settings

logger = logging.getLogger(__name__)

RECORD_ROW = "watchdog"
# Azure Storage keeps a message invisible for 7 days at most; a watchdog due later wakes early and re-arms.
MAX_VISIBILITY_SECONDS = 7 * 86_400
# A watchdog that turns visible this long before its due time woke at that cap, not for a missed tick.
EARLY_SECONDS = 60.0
# The platform's setting for the schedule's time zone (Premium and Dedicated; Flex and Consumption: UTC).
TIME_ZONE_SETTING = "WEBSITE_TIME_ZONE"
# A watchdog never expires: the chain must outlive an app stopped for days.
NEVER_EXPIRES = -1
# A TimeSpan's occurrences count from when a tick came: a tick this late (at most a tenth of the
# interval) is on time. NCRONTAB occurrences are fixed times: a late tick finds the same ones.
LATE_TICK_SECONDS = 2.0
# A tick's pass pushes the watchdog back at each progress sample: it stays at least two samples away, so
# it is not due before the next sample, even when one push fails.
DORMANT_AT_LEAST_SECONDS = 2 * SAMPLE_EVERY_SECONDS


@dataclass(frozen=True)
class Armed:
    """The chain's record: the one watchdog message, its latest pop receipt, and when it is due."""

    message_id: str
    pop_receipt: str
    due_at: float
    # When the watchdog first woke (ticks were missed); 0 while it is dormant.
    awake_since: float = 0.0
    etag: str = ""


@dataclass(frozen=True)
class Succession:
    """What a visible watchdog did: the successor it recorded, and whether it woke early (no drain)."""

    successor: Armed
    early: bool


class WatchdogChain:
    """The watchdog of one input queue: its record in ``table``, its messages on ``queue``."""

    def __init__(
        self,
        *,
        table: TableClient,
        queue: QueueClient,
        input_queue: str,
        schedule: Schedule,
        missed_ticks: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table
        self._queue = queue
        self._input_queue = input_queue
        self._partition = queue_name(input_queue)
        self.schedule = schedule
        self.missed_ticks = missed_ticks
        self.clock = clock

    def read(self) -> Armed | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._table.get_entity(self._partition, RECORD_ROW)
        except ResourceNotFoundError:  # no watchdog yet (or no table)
            return None
        return Armed(
            message_id=str(entity["MessageId"]),
            pop_receipt=str(entity["PopReceipt"]),
            due_at=float(entity["DueAt"]),
            awake_since=float(entity.get("AwakeSince", 0.0)),
            etag=str(entity.metadata["etag"]),
        )

    def dormant_due(self, now: float) -> float:
        """The earliest a dormant watchdog may be due after a tick at ``now``: ``missed_ticks`` ticks on,
        and a tick at least ``DORMANT_AT_LEAST_SECONDS`` on."""
        return self._ticks_on(now, self.missed_ticks)

    def _ticks_on(self, now: float, ticks: int) -> float:
        floor = self.schedule.after(now + DORMANT_AT_LEAST_SECONDS, ticks - self.missed_ticks + 1)
        return max(self.schedule.after(now, ticks), floor)

    def far_enough(self, armed: Armed, now: float) -> bool:
        """``armed`` is dormant and due late enough after a tick at ``now`` (which may be a little late)."""
        slack = min(LATE_TICK_SECONDS, self.schedule.interval_seconds / 10)
        return not armed.awake_since and armed.due_at >= self.dormant_due(now) - slack

    def keep_dormant(self) -> Armed | None:
        """A tick came: keep the watchdog at least ``missed_ticks`` ticks away (every other tick it is
        pushed to ``missed_ticks`` + 1). Returns the record as it stands."""
        now = self.clock()
        armed = self.read()
        if armed is not None and self.far_enough(armed, now):
            return armed
        if armed is not None and armed.awake_since:
            logger.info(
                "drain timer ticks again: the watchdog, awake since %s, goes dormant",
                _when(armed.awake_since),
            )
        due = self._ticks_on(now, self.missed_ticks + 1)
        return self._move(armed, due, awake_since=0.0)

    def succeed(self, message_id: str, issued_at: float) -> Succession | None:
        """A watchdog turned visible: if it is the chain's, record its successor and return it; None
        when it is not (a duplicate), or another writer recorded a successor first."""
        now = self.clock()
        armed = self.read()
        lost = armed is None or armed.due_at < issued_at  # the recorded one was due before this one was put
        if armed is not None and armed.message_id != message_id and not lost:
            return None
        early = armed is not None and armed.message_id == message_id and armed.due_at > now + EARLY_SECONDS
        if armed is not None and early:
            due, since = armed.due_at, armed.awake_since
        else:
            since = armed.awake_since if armed is not None and armed.awake_since else now
            due = self.schedule.after(now, 1)
        successor = replace(self._put(due), awake_since=since)
        try:
            recorded = self._write(successor, armed)
        except Exception as error:  # it stays unrecorded, and takes the chain over when it turns visible
            logger.warning(
                "watchdog %s could not record its successor (%s: %s); the successor takes over unrecorded",
                message_id,
                _name(error),
                error,
            )
            return Succession(successor, early)
        if recorded is None:
            self._delete(successor)
            return None
        return Succession(recorded, early)

    def put_unrecorded(self) -> Armed:
        """A successor the record does not name: it takes the chain over when it turns visible, since
        the record then names a watchdog due before it was put. For when the record cannot be written."""
        return self._put(self.schedule.after(self.clock(), 1))

    def _move(self, armed: Armed | None, due: float, *, awake_since: float) -> Armed | None:
        from azure.core.exceptions import HttpResponseError

        if armed is not None:
            try:
                moved = self._queue.update_message(
                    armed.message_id, armed.pop_receipt, visibility_timeout=self._delay(due)
                )
            except HttpResponseError as error:
                # 404: gone (run, or never put); 400 PopReceiptMismatch: the host holds it (running now).
                if error.status_code not in (400, 404):
                    raise
            else:
                pushed = replace(
                    armed, pop_receipt=str(moved.pop_receipt), due_at=due, awake_since=awake_since
                )
                recorded = self._write(pushed, armed)
                if recorded is None:  # another writer recorded another watchdog: this one is a duplicate
                    self._delete(pushed)
                    return self.read()
                return recorded
        fresh = replace(self._put(due), awake_since=awake_since)
        recorded = self._write(fresh, armed)
        if recorded is None:
            self._delete(fresh)
            return self.read()
        return recorded

    def _put(self, due: float) -> Armed:
        from azure.core.exceptions import ResourceNotFoundError

        token = WatchdogToken(self._input_queue, self.clock()).encode()

        def send() -> Any:
            return self._queue.send_message(
                token, visibility_timeout=self._delay(due), time_to_live=NEVER_EXPIRES
            )

        try:
            sent = send()
        except ResourceNotFoundError:  # no tick made the queue yet
            create_token_queue(self._queue)
            sent = send()
        return Armed(str(sent.id), str(sent.pop_receipt), due)

    def _write(self, armed: Armed, previous: Armed | None) -> Armed | None:
        """Record ``armed`` if the record is still ``previous``; None when another writer changed it."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError
        from azure.data.tables import UpdateMode

        entity = {
            "PartitionKey": self._partition,
            "RowKey": RECORD_ROW,
            "MessageId": armed.message_id,
            "PopReceipt": armed.pop_receipt,
            "DueAt": armed.due_at,
            "AwakeSince": armed.awake_since,
        }
        try:
            if previous is None:
                metadata = with_table(self._table, lambda: self._table.create_entity(entity))
            else:
                metadata = self._table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=previous.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except HttpResponseError as error:
            # 409: inserted meanwhile; 412: replaced meanwhile; 404: deleted meanwhile.
            if error.status_code in (404, 409, 412):
                return None
            raise
        return replace(armed, etag=str(metadata["etag"]))

    def _delete(self, armed: Armed) -> None:
        try:
            self._queue.delete_message(armed.message_id, armed.pop_receipt)
        except Exception as error:  # a duplicate left behind is dropped unrun when it turns visible
            logger.debug("watchdog duplicate %s not deleted: %s", armed.message_id, error)

    def _delay(self, due: float) -> int:
        return max(1, min(MAX_VISIBILITY_SECONDS, math.ceil(due - self.clock())))


def watchdog_chain(settings: Settings) -> WatchdogChain | None:
    """The app's watchdog, or None when ``SQS_WATCHDOG_MISSED_TICKS`` is 0. Raises when the schedule
    cannot be read or no storage is set."""
    if settings.watchdog_missed_ticks <= 0:
        return None
    return WatchdogChain(
        table=passes_table(),
        queue=token_queue_client(settings.scale_out_queue),
        input_queue=settings.input_queue,
        schedule=parse_schedule(settings.poll_schedule, os.environ.get(TIME_ZONE_SETTING, "")),
        missed_ticks=settings.watchdog_missed_ticks,
    )


class TickWatch:
    """The tick's hold on the watchdog: pushed again while a long pass runs, so it never turns visible
    beside a live tick. ``on_progress`` is a drain progress callback; it never raises."""

    def __init__(self, chain: WatchdogChain, armed: Armed | None) -> None:
        self.chain = chain
        self.armed = armed

    def on_progress(self, _summary: object) -> None:
        try:
            armed = self.armed
            if armed is not None and self.chain.far_enough(armed, self.chain.clock()):
                return
            self.armed = self.chain.keep_dormant()
        except Exception as error:  # the next sample tries again
            logger.debug("watchdog not pushed: %s: %s", _name(error), error)


def keep_watchdog_dormant(settings: Settings) -> TickWatch | None:
    """The tick's part, before it drains: push the watchdog back. Never raises: the watchdog must not
    stop the drain it guards."""
    try:
        chain = watchdog_chain(settings)
        if chain is None:
            return None
        return TickWatch(chain, chain.keep_dormant())
    except Exception as error:
        logger.warning("watchdog failed, the tick drains on: %s: %s", _name(error), error)
        return None


def stand_in(settings: Settings, message_id: str, token: WatchdogToken) -> None:
    """A watchdog turned visible (``drain_input_queue_on_token``): put the successor, then drain in the
    tick's place, in the tick's slot. Raises ``DrainFailed`` as a tick's pass does."""
    try:
        chain = watchdog_chain(settings)
    except Exception as error:
        logger.error("watchdog %s dropped unrun: %s: %s", message_id, _name(error), error)
        return
    if chain is None:
        logger.info("watchdog %s dropped unrun: SQS_WATCHDOG_MISSED_TICKS is 0", message_id)
        return
    try:
        succession = chain.succeed(message_id, token.issued_at)
    except Exception as error:  # no successor yet: put one that takes the chain over unrecorded
        logger.warning(
            "watchdog %s could not read its record or put its successor: %s: %s",
            message_id,
            _name(error),
            error,
        )
        try:
            chain.put_unrecorded()
        except Exception as put_error:
            logger.error(
                "the watchdog chain ends: no successor could be put (%s: %s); the next tick starts it again",
                _name(put_error),
                put_error,
            )
        awake_since, next_due = time.time(), None
    else:
        if succession is None:
            logger.info("watchdog %s dropped unrun: the chain's watchdog is another message", message_id)
            return
        if succession.early:
            logger.info(
                "watchdog %s woke early (storage hides a message 7 days at most): due again at %s",
                message_id,
                _when(succession.successor.due_at),
            )
            return
        awake_since, next_due = succession.successor.awake_since, succession.successor.due_at
    _drain_in_the_ticks_place(settings, message_id, awake_since, next_due)


def _drain_in_the_ticks_place(
    settings: Settings, message_id: str, awake_since: float, next_due: float | None
) -> None:
    from ..runtime import drain_and_report
    from .fan_out import fan_out_for

    # Its own message (held by the host while it runs) and its successor are on the token queue.
    fan_out = fan_out_for(settings, watchdog_messages=2)
    if fan_out is not None and not fan_out.start():
        logger.info("watchdog %s does not drain: a drain pass holds the tick slot", message_id)
        return
    if fan_out is None or fan_out.lease is None:  # slots out of reach: it could drain beside a tick's pass
        reason = "; ".join(fan_out.errors) if fan_out else "the slots are out of reach"
        logger.warning("watchdog %s does not drain: no slot to run in (%s)", message_id, reason)
        return
    logger.warning(
        "drain timer missed its ticks: the watchdog drains in its place (awake since %s, next due %s)",
        _when(awake_since),
        _when(next_due) if next_due is not None else "unknown",
    )
    drain_and_report(
        settings,
        stop=fan_out.stop,
        progress=fan_out.on_progress,
        let_go=fan_out.finish,
        started_by="watchdog",
    )


def _name(error: BaseException) -> str:
    return type(error).__name__


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
