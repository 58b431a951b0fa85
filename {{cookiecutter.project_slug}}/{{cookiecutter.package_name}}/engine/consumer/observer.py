"""What a pass tells as it goes. This one tells nothing; engine/telemetry's tells OpenTelemetry."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
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

    def deleted(self, messages: Sequence[SqsMessage]) -> None:
        """SQS confirmed the delete of these messages (handled, or moved to the DLQ by the consumer), after
        any retries; never told of a delete given up on. Called on an ack thread once the delete's waiters
        are answered, outside the acknowledger's lock: keep it quick. An error here is logged, and costs no
        ack."""

    def pass_finished(self, summary: DrainSummary) -> None:
        """The pass ended, every ack done; ``summary`` is what it returns."""


class PassObservers(PassObserver):
    """Several observers told alike, in order."""

    def __init__(self, *observers: PassObserver) -> None:
        self.observers = observers

    def pass_started(self) -> None:
        for observer in self.observers:
            observer.pass_started()

    def received(self, messages: Sequence[SqsMessage]) -> None:
        for observer in self.observers:
            observer.received(messages)

    def handling(self, message: SqsMessage) -> AbstractContextManager[object]:
        stack = ExitStack()
        for observer in self.observers:
            stack.enter_context(observer.handling(message))
        return stack

    def deleted(self, messages: Sequence[SqsMessage]) -> None:
        for observer in self.observers:
            observer.deleted(messages)

    def pass_finished(self, summary: DrainSummary) -> None:
        for observer in self.observers:
            observer.pass_finished(summary)
