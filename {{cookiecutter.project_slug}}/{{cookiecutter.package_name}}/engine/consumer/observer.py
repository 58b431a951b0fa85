"""What a pass tells as it goes. This one tells nothing; engine/telemetry's tells OpenTelemetry."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import SqsMessage
    from .summary import DrainSummary


class PassObserver:
    def pass_started(self) -> None:
        """The pass begins (on the thread that called ``drain``)."""

    def received(self, messages: Sequence[SqsMessage]) -> None:
        """A receive returned these messages (possibly none)."""

    def handling(self, message: SqsMessage) -> AbstractContextManager[object]:
        """Wraps one handler run; the handler's exception, if any, passes through it."""
        return nullcontext()

    def pass_finished(self, summary: DrainSummary) -> None:
        """The pass ended, every ack done; ``summary`` is what it returns."""
