"""The SQS consumer: one drain pass of a queue, within a time budget, losing nothing.

Its parts, one module each:

- ``message``: what a handler gets (``SqsMessage``) and what a handler is (sync or async);
- ``receiving``: the receive call and the polling policy (short idle ticks, the linger);
- ``handling``: the pass's event loop, handler slots and the prefetch buffer;
- ``acknowledging``: batched deletes, backoffs, releases, and the heartbeat;
- ``fifo``: ordering; a FIFO queue specializes the standard one;
- ``observer``: what a pass tells as it goes (telemetry hooks in here);
- ``dead_lettering``: FIFO failures retried inside the pass, then moved to the DLQ by the consumer;
- ``attempts``: FIFO attempts SQS does not count, kept across passes by an optional ledger;
- ``sizing``: receives and ack calls in flight, from measured round trips and rates;
- ``options``, ``drain_pass`` and ``summary``: what a pass is asked, the pass, and what it did.

On a standard queue a failed message is never deleted: SQS redelivers it after its
backoff, and the queue's redrive policy moves it to the DLQ after ``maxReceiveCount``
receives. On FIFO the pass retries it itself while its group waits, and moves it to
the DLQ after ``maxReceiveCount`` attempts, counted across passes, so no message behind it
pays for its failures; a group moves on only once SQS has confirmed the delete before, and
never holds up the receiving of other groups.
"""

from .attempts import AttemptLedger
from .drain_pass import drain
from .fifo import by_group
from .message import Handler, SqsMessage
from .observer import PassObserver, PassObservers
from .options import SQS_MAX_VISIBILITY_SECONDS, DrainOptions
from .summary import DrainSummary

__all__ = [
    "SQS_MAX_VISIBILITY_SECONDS",
    "AttemptLedger",
    "DrainOptions",
    "DrainSummary",
    "Handler",
    "PassObserver",
    "PassObservers",
    "SqsMessage",
    "by_group",
    "drain",
]
