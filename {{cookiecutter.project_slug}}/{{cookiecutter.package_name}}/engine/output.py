"""Sending from any function: what it returns goes to SQS, or a collector batches what it adds.

``@sqs_output()`` on a timer, queue or any other function sends its return value (a body ``str``, a
pydantic model, a ``dict``, an ``OutgoingMessage``, or a list of them; ``None`` sends nothing) to
``SQS_OUTPUT_QUEUE`` or the named queue, through ``Sender``: the same size checks, batches of 10 and by
bytes, and retries. ``@sqs_output_http()`` does the same for an HTTP function and answers with what
happened. ``with sqs_collector() as out: out.add(...)`` batches sends inside a function.

A message SQS refused is never dropped in silence: the rest are sent, then ``MessagesNotSent`` is raised
with every refusal, so the host records the invocation as failed (the HTTP decorator answers 207, 400,
502 or 503 instead). A queue-triggered function then runs again and sends the others again: make
consumers idempotent (``engine/idempotency``), as SQS delivers at least once anyway.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec

import azure.functions as func

from .http_io import ANONYMOUS_SENDS, RETRY_AFTER_SECONDS, answer, batch_status, json_response
from .producer import BatchResult, OutgoingMessage, Sender, SendFailure
from .queues import SQS_BATCH_LIMIT

if TYPE_CHECKING:
    from pydantic import BaseModel

    Sendable = str | BaseModel | Mapping[str, Any] | OutgoingMessage
else:
    Sendable = Any

Returned = Sendable | Sequence[Sendable] | None
P = ParamSpec("P")
logger = logging.getLogger(__name__)


class MessagesNotSent(RuntimeError):
    """Some messages were refused (the others were sent); ``failures`` says which and why."""

    def __init__(self, result: BatchResult) -> None:
        reasons = "; ".join(f"#{f.index} {f.code}: {f.reason}" for f in result.failures)
        super().__init__(f"{result.failed} of {result.sent + result.failed} messages not sent: {reasons}")
        self.result = result
        self.failures = result.failures


def to_message(item: Sendable, group_id: str | None = None) -> OutgoingMessage:
    """One returned or added item as a message; JSON for models and dicts, a ``str`` as it is."""
    if isinstance(item, OutgoingMessage):
        return item
    if isinstance(item, str):
        body = item
    elif isinstance(item, Mapping):
        body = json.dumps(item)
    elif hasattr(item, "model_dump_json"):
        body = item.model_dump_json()
    else:
        raise TypeError(f"cannot send a {type(item).__name__}: return a str, a dict or a pydantic model")
    return OutgoingMessage(body=body, group_id=group_id)


def to_messages(returned: Returned, group_id: str | None = None) -> list[OutgoingMessage]:
    if returned is None:
        return []
    if isinstance(returned, str | Mapping | OutgoingMessage) or hasattr(returned, "model_dump_json"):
        return [to_message(returned, group_id)]  # type: ignore[arg-type]
    return [to_message(item, group_id) for item in returned]


def sender_for(queue: str | None) -> Sender:
    """``Sender`` to the named queue (a name or URL), or to ``SQS_OUTPUT_QUEUE``."""
    from .runtime import output_sender

    return output_sender(queue=queue)


def send_all(messages: Sequence[OutgoingMessage], queue: str | None = None) -> BatchResult:
    """Sends every message it can; raises ``MessagesNotSent`` after, if any was refused."""
    result = sender_for(queue).send_batch(messages) if messages else BatchResult()
    if result.failures:
        raise MessagesNotSent(result)
    return result


def _without_return_value(function: Callable[..., Any], returns: Any) -> dict[str, Any]:
    """The function's signature attributes, with what the wrapper returns: the host indexes these."""
    signature = inspect.signature(function)
    return {
        "__signature__": signature.replace(return_annotation=returns),
        "__annotations__": {**function.__annotations__, "return": returns},
    }


def sqs_output(
    queue: str | None = None, *, group_id: str | None = None
) -> Callable[[Callable[P, Returned]], Callable[P, None]]:
    """Sends what the function returns. Use it under the trigger decorator (``@bp.timer_trigger`` first)."""

    def decorate(function: Callable[P, Returned]) -> Callable[P, None]:
        @functools.wraps(function)
        def send_returned(*args: P.args, **kwargs: P.kwargs) -> None:
            send_all(to_messages(function(*args, **kwargs), group_id), queue)

        for name, value in _without_return_value(function, None).items():
            setattr(send_returned, name, value)
        return send_returned

    return decorate


def sqs_output_http(
    queue: str | None = None, *, group_id: str | None = None
) -> Callable[[Callable[P, Returned | func.HttpResponse]], Callable[P, func.HttpResponse]]:
    """For an HTTP function: sends what it returns and answers.

    One message: 202 with its ``message_id``. A list: 200 when all were sent, 207 when some were, and
    when none was, 400, 503 or 502 by who can act on it, with every failure. A failure's status is
    ``http_io``'s. Return an ``HttpResponse`` to answer without sending; raise ``BadRequest`` for a 400.
    """

    def decorate(function: Callable[P, Returned | func.HttpResponse]) -> Callable[P, func.HttpResponse]:
        @functools.wraps(function)
        def send_and_answer(*args: P.args, **kwargs: P.kwargs) -> func.HttpResponse:
            def send() -> func.HttpResponse:
                returned = function(*args, **kwargs)
                if isinstance(returned, func.HttpResponse):
                    return returned
                messages, sender = to_messages(returned, group_id), sender_for(queue)
                if isinstance(returned, Sequence) and not isinstance(returned, str):
                    return batch_response(sender.send_batch(messages))
                if not messages:  # None: nothing to send
                    return func.HttpResponse(status_code=204)
                return json_response(202, {"message_id": sender.send(messages[0])})

            if ANONYMOUS_SENDS:
                # Whatever trace the caller's request carried: the send starts a new one.
                from .telemetry.propagation import new_trace

                with new_trace():
                    return answer(send)
            return answer(send)

        for name, value in _without_return_value(function, func.HttpResponse).items():
            setattr(send_and_answer, name, value)
        return send_and_answer

    return decorate


def batch_response(result: BatchResult) -> func.HttpResponse:
    for failure in result.failures:
        logger.warning("batch item %d not sent: %s: %s", failure.index, failure.code, failure.reason)
    status = batch_status(result.failures, result.sent)
    count = result.sent + result.failed
    return json_response(
        status,
        {
            "sent": result.sent,
            "failed": result.failed,
            "message_ids": [result.message_ids.get(i) for i in range(count)],
            "failures": [
                # SQS's own message names accounts, roles and queue ARNs: the log has it.
                {"index": f.index, "code": f.code, "retryable": not f.sender_fault}
                for f in result.failures
            ],
        },
        {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None,
    )


class Collector:
    """Buffers added messages and sends them in batches of 10; indexes count from the first ``add``."""

    def __init__(self, sender: Sender, group_id: str | None = None) -> None:
        self.sender = sender
        self.group_id = group_id
        self.result = BatchResult()
        self._pending: list[OutgoingMessage] = []
        self._added = 0

    def add(self, item: Sendable) -> None:
        self._pending.append(to_message(item, self.group_id))
        if len(self._pending) == SQS_BATCH_LIMIT:
            self.flush()

    def flush(self) -> None:
        offset, pending = self._added, self._pending
        self._added += len(pending)
        self._pending = []
        if not pending:
            return
        sent = self.sender.send_batch(pending)
        self.result.requests += sent.requests
        self.result.message_ids.update({offset + i: message_id for i, message_id in sent.message_ids.items()})
        self.result.failures.extend(
            SendFailure(offset + f.index, f.code, f.reason, f.sender_fault) for f in sent.failures
        )


@contextmanager
def sqs_collector(queue: str | None = None, *, group_id: str | None = None) -> Iterator[Collector]:
    """``with sqs_collector() as out: out.add(...)``: what is left is sent at the end of the block, and
    ``MessagesNotSent`` raised if any message was refused. If the block raises, what was added is still
    sent (it was meant to be) and the block's error goes on."""
    collector = Collector(sender_for(queue), group_id)
    try:
        yield collector
    except BaseException:
        collector.flush()
        if collector.result.failures:  # the block's error goes on; the refusals are not lost with it
            logger.error("%s", MessagesNotSent(collector.result))
        raise
    collector.flush()
    if collector.result.failures:
        raise MessagesNotSent(collector.result)
