"""The tick's side of scale-out: measure the pass, decide once, put the tokens.

The drain calls ``FanOut.on_progress`` with its counts every ``SAMPLE_EVERY_SECONDS``.
The first sample with something handled gives the rate; with the backlog read from SQS
then, ``decide_fan_out`` says how many tokens, and they are put at once. One decision
per pass: a pass that already asked for help does not ask again; the next tick decides
afresh. A pass that clears the queue before its first sample never fans out.

Fan-out is best effort: a failure to read the backlog or to put tokens is logged, and
the pass goes on draining.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .decision import FanOutDecision, decide_fan_out
from .drain_token import DrainToken

if TYPE_CHECKING:
    from ..consumer import DrainSummary
    from ..settings import Settings

logger = logging.getLogger(__name__)

# The drain's progress period; the first sample decides.
SAMPLE_EVERY_SECONDS = 5.0


class FanOut:
    def __init__(
        self,
        settings: Settings,
        *,
        backlog: Callable[[], int],
        put: Callable[[Sequence[DrainToken]], int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._backlog = backlog
        self._put = put
        self._clock = clock
        self.decision: FanOutDecision | None = None
        self.tokens_put = 0
        self.error = ""

    def on_progress(self, summary: DrainSummary) -> None:
        """The drain's progress callback; never raises (fan-out must not stop the drain)."""
        if self.decision is not None or self.error:
            return
        handled = summary.succeeded + summary.failed
        if not handled or summary.duration_seconds <= 0:
            return  # no rate yet: wait for the next sample
        try:
            self.decision = decide_fan_out(
                backlog=self._backlog(),
                rate_per_second=handled / summary.duration_seconds,
                budget_seconds=self.settings.drain_budget_seconds,
                max_workers=self.settings.scale_out_max_workers,
            )
            if self.decision.tokens:
                self.tokens_put = self._put(self._tokens(self.decision.tokens))
                from ..telemetry.drain import record_tokens_issued

                record_tokens_issued(self.settings.input_queue, self.tokens_put)
        except Exception as error:
            self.error = f"{type(error).__name__}: {error}"
            logger.warning("fan-out failed, draining on alone: %s", self.error)
            return
        fields = {**self.decision.as_log_fields(), "tokens_put": self.tokens_put}
        logger.info("fan-out decided %s", json.dumps(fields), extra={"sqs_fan_out": fields})

    def _tokens(self, count: int) -> list[DrainToken]:
        issued_at, fan_out_id = self._clock(), uuid.uuid4().hex
        return [
            DrainToken(
                queue=self.settings.input_queue,
                issued_at=issued_at,
                budget_seconds=self.settings.drain_budget_seconds,
                fan_out_id=fan_out_id,
            )
            for _ in range(count)
        ]


def fan_out_for(settings: Settings) -> FanOut | None:
    """The tick's fan-out on the app's SQS queue and token queue; None when it is off."""
    if settings.scale_out_max_workers <= 0:
        return None
    from ..aws_session import sqs_client
    from ..queues import queue_depth, queue_url
    from .token_queue import put_tokens, token_queue_client

    def backlog() -> int:
        client = sqs_client(settings)
        return queue_depth(client, queue_url(client, settings.input_queue)).backlog

    def put(tokens: Sequence[DrainToken]) -> int:
        return put_tokens(token_queue_client(settings.scale_out_queue), tokens)

    return FanOut(settings, backlog=backlog, put=put)
