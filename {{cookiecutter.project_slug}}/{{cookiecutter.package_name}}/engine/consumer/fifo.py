"""Ordering: what may run at once. A standard queue is the general case; FIFO specializes it.

As in Powertools' ``SqsFifoPartialProcessor``: on a FIFO queue the messages of one
``MessageGroupId`` run in order, one at a time, and after a failure the rest of that
group goes back with the failed message, so nothing overtakes it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..queues import is_fifo
from .message import SqsMessage


class Ordering:
    """Standard queue: each message is a unit of work of its own; none waits for another."""

    fifo = False

    def units(self, messages: list[SqsMessage]) -> list[list[SqsMessage]]:
        return [[message] for message in messages]

    def overtakers(self, received: list[SqsMessage], in_hand: Iterable[SqsMessage]) -> list[SqsMessage]:
        """Received messages that must not run before messages this drain still holds."""
        return []


class FifoOrdering(Ordering):
    """FIFO queue: a unit is one group's messages, handled in the order received."""

    fifo = True

    def units(self, messages: list[SqsMessage]) -> list[list[SqsMessage]]:
        return by_group(messages)

    def overtakers(self, received: list[SqsMessage], in_hand: Iterable[SqsMessage]) -> list[SqsMessage]:
        """SQS gives out no message of a group while an earlier one is in flight; an emulator may.

        LocalStack makes a group visible again at the first message of a release call,
        before the call has released the rest. A message received after an earlier
        message of its group that this drain still holds, or is sending back, must go
        back too.
        """
        earliest: dict[str | None, int] = {}
        for message in in_hand:
            number = message.sequence_number
            if number is not None and number < earliest.get(message.group_id, number + 1):
                earliest[message.group_id] = number
        return [
            m
            for m in received
            if m.sequence_number is not None
            and m.sequence_number > earliest.get(m.group_id, m.sequence_number)
        ]


def ordering_for(queue_url: str) -> Ordering:
    return FifoOrdering() if is_fifo(queue_url) else Ordering()


def by_group(messages: list[SqsMessage]) -> list[list[SqsMessage]]:
    """The messages of each MessageGroupId, in the order received."""
    groups: dict[str | None, list[SqsMessage]] = {}
    for message in messages:
        groups.setdefault(message.group_id, []).append(message)
    return list(groups.values())
