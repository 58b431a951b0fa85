"""The tick's side of scale-out: hold the tick's slot, and top the token passes up at every sample.

The drain calls ``FanOut.on_progress`` with its counts every ``SAMPLE_EVERY_SECONDS`` (``pass_leases``).
Each sample renews the tick's lease, reads the backlog (SQS: visible, in flight and delayed), the
token passes running (their leases) and the tokens queued (the token queue's approximate
count), estimates the arrival rate from the last two readings, and puts the tokens ``decide``
asks for. So a pass that falls behind asks for help at once, and again whenever the backlog
or the arrivals grow; a token that is put twice, or runs late, finds no free slot or an empty
queue (``pass_leases``).

Fan-out is best effort: a failure to read or to put is logged, and the pass goes on draining and
tries again at the next sample. Only a lost lease stops the pass: its slot may be another's.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .drain_token import DrainToken
from .pass_leases import TICK_SLOT, Lease, PassSlots, pass_slots, token_slot

if TYPE_CHECKING:
    from ..consumer import DrainSummary
    from ..settings import Settings
    from .decision import Reading, ScaleDecision

logger = logging.getLogger(__name__)


class FanOut:
    def __init__(
        self,
        settings: Settings,
        *,
        slots: PassSlots,
        backlog: Callable[[], int],
        tokens_queued: Callable[[], int],
        put: Callable[[Sequence[DrainToken]], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._slots = slots
        self._backlog = backlog
        self._tokens_queued = tokens_queued
        self._put = put
        self._clock = clock
        self.lease: Lease | None = None
        self.stop = threading.Event()
        self.decisions: list[ScaleDecision] = []
        self.tokens_put = 0
        self.errors: list[str] = []
        self._previous: Reading | None = None
        self._own_handled = 0
        self._all_handled = 0.0

    def start(self) -> bool:
        """Claim the tick's slot. False: another tick's pass holds it, and this tick must not drain.

        When the slots cannot be reached, the pass drains alone: without counting, it fans out nothing.
        """
        try:
            self.lease = self._slots.claim([TICK_SLOT])
        except Exception as error:
            self._failed(error)
            return True
        if self.lease is None:
            return False
        self.stop = self.lease.lost
        return True

    def finish(self) -> None:
        if self.lease is not None:
            self.lease.release()

    def on_progress(self, summary: DrainSummary) -> None:
        """The drain's progress callback; never raises (fan-out must not stop the drain)."""
        # Loaded at the first sample, not when the host indexes the app.
        from .decision import Reading, arrival_rate, decide, token_passes

        if self.lease is None or not self.lease.renew():
            return
        if self.settings.scale_out_max_workers <= 0:
            return  # the slot alone (the watchdog's need): no fan-out to decide
        handled = summary.succeeded + summary.failed
        if not handled or summary.duration_seconds <= 0:
            return  # no rate yet: wait for the next sample
        try:
            running = self._slots.running()
            outstanding = token_passes(self._tokens_queued(), running)
            backlog = self._backlog()
        except Exception as error:
            self._failed(error)
            return
        # All drains' work since the last reading: ours, and each token pass's at our rate.
        self._all_handled += (handled - self._own_handled) * (1 + running)
        self._own_handled = handled
        reading = Reading(self._clock(), backlog, self._all_handled)
        decision = decide(
            backlog=backlog,
            rate_per_drain=handled / summary.duration_seconds,
            arrivals_per_second=arrival_rate(self._previous, reading),
            token_passes_outstanding=outstanding,
            target_lag_seconds=self.settings.scale_out_target_lag_seconds,
            activation_backlog=self.settings.scale_out_activation_backlog,
            max_workers=self.settings.scale_out_max_workers,
        )
        self._previous = reading
        self.decisions.append(decision)
        put = 0
        if decision.tokens:
            try:
                put = self._put(self._tokens(decision.tokens))
            except Exception as error:  # the next sample counts what did get through
                self._failed(error)
        self.tokens_put += put
        if put:
            try:
                from ..telemetry.drain import record_tokens_issued

                record_tokens_issued(self.settings.input_queue, put)
            except Exception as error:  # a metric never stops the drain
                self._failed(error)
        fields = {**decision.as_log_fields(), "tokens_put": put}
        level = logging.INFO if decision.tokens else logging.DEBUG
        logger.log(level, "fan-out decided %s", json.dumps(fields), extra={"sqs_fan_out": fields})

    def _failed(self, error: Exception) -> None:
        self.errors.append(f"{type(error).__name__}: {error}")
        # Once at WARNING; a pass samples every 5 s and would repeat it for its whole budget.
        level = logging.WARNING if len(self.errors) == 1 else logging.DEBUG
        logger.log(level, "fan-out failed, draining on: %s", self.errors[-1])

    def _tokens(self, count: int) -> list[DrainToken]:
        issued_at, fan_out_id = time.time(), uuid.uuid4().hex
        return [
            DrainToken(
                queue=self.settings.input_queue,
                issued_at=issued_at,
                budget_seconds=self.settings.drain_budget_seconds,
                fan_out_id=fan_out_id,
            )
            for _ in range(count)
        ]


def fan_out_for(
    settings: Settings, *, clock: Callable[[], float] = time.monotonic, watchdog_messages: int | None = None
) -> FanOut | None:
    """The tick's fan-out on the app's SQS queue, token queue and slots; None when it is off.

    With fan-out off (``SQS_SCALE_OUT_MAX_WORKERS`` 0) the tick still holds its slot while the watchdog
    is on: a watchdog pass drains in that slot, never beside a tick's pass. ``watchdog_messages``: the
    watchdog's messages the token queue's count holds (1 dormant; 2 while one of them stands in).
    """
    watchdog_on = settings.watchdog_missed_ticks > 0
    if settings.scale_out_max_workers <= 0 and not watchdog_on:
        return None
    not_tokens = (1 if watchdog_on else 0) if watchdog_messages is None else watchdog_messages
    from ..aws_session import sqs_client
    from ..queues import queue_depth, queue_url
    from .token_queue import put_tokens, token_queue_client, tokens_queued

    def backlog() -> int:
        client = sqs_client(settings)
        depth = queue_depth(client, queue_url(client, settings.input_queue))
        return depth.backlog + depth.delayed

    def queued() -> int:
        return max(0, tokens_queued(token_queue_client(settings.scale_out_queue)) - not_tokens)

    def put(tokens: Sequence[DrainToken]) -> int:
        return put_tokens(token_queue_client(settings.scale_out_queue), tokens)

    try:
        slots = pass_slots(settings.input_queue)
    except Exception as error:
        logger.warning("fan-out failed, draining alone: %s: %s", type(error).__name__, error)
        return None
    return FanOut(settings, slots=slots, backlog=backlog, tokens_queued=queued, put=put, clock=clock)


def claim_token_slot(settings: Settings) -> Lease | None:
    """A slot for a token's pass, or None when the cap's worth of token passes are running.

    Raises when the slots cannot be reached: without its lease a pass could exceed the cap.
    """
    slots = pass_slots(settings.input_queue)
    return slots.claim([token_slot(number) for number in range(1, settings.scale_out_max_workers + 1)])
