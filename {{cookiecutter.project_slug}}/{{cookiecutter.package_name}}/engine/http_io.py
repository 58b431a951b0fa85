"""What the two HTTP send functions share: request parsing, message options, error answers.

An answer holds what the caller can act on and nothing of the app's insides: a status by who can
fix it, the error code (SQS's, or our own check's), whether a retry may help, and our own checks'
reasons; SQS's messages (which name accounts, roles and queue ARNs) go to the log only.

- 400, ``retryable: false``: the caller's to fix: not JSON, nested too deep, a bad option, a FIFO
  send without ``group_id``, or refused by SQS for its body, attributes or IDs;
- 413: a body, or a count of items, above the stated limit;
- 503 with ``Retry-After``: SQS throttled, failed (5xx) or could not be reached, after botocore's retries;
  or a body above the limit could not be stored in S3 (``PayloadNotStored``, SQS_LARGE_PAYLOAD_BUCKET);
- 502: SQS refused the app itself (access, a missing queue, its KMS key), ``retryable: false``; or
  something else failed, ``retryable: true``;
- 500: a setting is missing or malformed;
- a batch: 200 when all were sent, 207 when some were; when none was, 400 if every item was the
  caller's to fix, 503 if a retry may help any, else 502; each failure with its code and ``retryable``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from .producer import MessageRejected, OutgoingMessage, PayloadNotStored, SendFailure, refusal
from .queues import SQS_BATCH_LIMIT
from .settings import HTTP_AUTH_LEVEL, SettingsError
from .telemetry.names import TRACEPARENT, TRACESTATE

logger = logging.getLogger(__name__)

ATTRIBUTE_HEADER_PREFIX = "x-message-attribute-"
# The largest batch request read: ten of the largest messages SQS takes (1 MiB each), as one
# SendMessageBatch could carry at most. A single send's limit is SQS_MAX_MESSAGE_BYTES.
SQS_LARGEST_MESSAGE_BYTES = 1_048_576
MAX_BATCH_REQUEST_BYTES = SQS_LARGEST_MESSAGE_BYTES * SQS_BATCH_LIMIT
# A 503's Retry-After: botocore has already retried for several seconds (AWS_MAX_ATTEMPTS).
RETRY_AFTER_SECONDS = 5
# Anyone who reaches the app's URL may send: the caller chooses less (``request_options``).
ANONYMOUS_SENDS = HTTP_AUTH_LEVEL == "anonymous"


class BadRequest(ValueError):
    """The request is malformed; the message tells the caller what to fix."""

    code = "InvalidRequest"


class RequestTooLarge(BadRequest):
    """The body is larger than the function reads: 413, before it is parsed."""

    code = "RequestTooLarge"


def json_response(status_code: int, payload: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(payload), status_code=status_code, mimetype="application/json", headers=headers
    )


def error_response(
    status_code: int, message: str, code: str, *, retryable: bool = False
) -> func.HttpResponse:
    """``{"error", "code", "retryable"}``; a retryable answer says when, in ``Retry-After``."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if retryable else None
    return json_response(status_code, {"error": message, "code": code, "retryable": retryable}, headers)


def answer(send: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    """Runs a send; every way it can fail gets its own status, and the caller a reason."""
    try:
        return send()
    except BadRequest as error:
        return error_response(413 if isinstance(error, RequestTooLarge) else 400, str(error), error.code)
    except MessageRejected as error:
        return rejected_response(error)
    except SettingsError:
        logger.exception("the app is misconfigured")
        return error_response(500, "the app is misconfigured; its logs say which setting", "Misconfigured")
    except Exception as error:
        if type(error).__module__.startswith("botocore"):
            return sqs_error_response(error)
        logger.exception("sending to the output queue failed")
        return error_response(
            502, "the output queue did not take the message(s): retry later", "InternalError", retryable=True
        )


def rejected_response(error: MessageRejected) -> func.HttpResponse:
    """A message refused before SQS saw it: the caller's to fix (400, 413 when too large), or, with
    SQS_LARGE_PAYLOAD_BUCKET, its body not stored in S3 (``PayloadNotStored``, logged by the sender):
    ours, and a retry may get past it, as past SQS's own failures (503)."""
    if isinstance(error, PayloadNotStored):
        return error_response(503, str(error), error.code, retryable=True)
    return error_response(413 if error.code == "MessageTooLarge" else 400, str(error), error.code)


def sqs_error_response(error: Exception) -> func.HttpResponse:
    """An SQS call that botocore gave up on, answered by who can act on it; SQS's message (which
    names accounts, roles and queue ARNs) goes to the log only."""
    code, refused = refusal(error)
    if SendFailure(0, code, "", refused).sender_input:
        logger.info("SQS refused the message as given: %s", error)
        return error_response(400, "SQS refused the message as given (its body, attributes or IDs)", code)
    if refused:
        logger.error("SQS refused the app's send: %s", error)
        return error_response(502, "SQS refused the app's send; the app's log says why", code)
    logger.warning("sending to the output queue failed: %s", error)
    return error_response(503, "the output queue is busy or unreachable: retry later", code, retryable=True)


def batch_status(failures: Sequence[SendFailure], sent: int) -> int:
    """A batch's status: 200, 207 when some were sent; when none was, 400 if every refusal was the
    caller's to fix, 503 if a retry may help any, else 502."""
    if not failures:
        return 200
    if sent:
        return 207
    if all(failure.sender_input for failure in failures):
        return 400
    return 502 if all(failure.sender_fault for failure in failures) else 503


def request_json(req: func.HttpRequest, max_bytes: int, limit_name: str) -> tuple[str, Any]:
    """The body as text, and parsed; it must be JSON in UTF-8, and at most ``max_bytes``."""
    body = req.get_body()
    if len(body) > max_bytes:
        raise RequestTooLarge(f"the request body is {len(body)} bytes; at most {max_bytes} ({limit_name})")
    try:
        text = body.decode("utf-8")
        return text, json.loads(text)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        raise BadRequest("the request body must be valid JSON, in UTF-8") from None
    except RecursionError:
        raise BadRequest("the request body is nested too deeply") from None


def json_text(item: Any) -> str:
    """One item of a parsed request as the JSON text of its message."""
    try:
        return json.dumps(item)
    except RecursionError:
        raise BadRequest("an item of the request body is nested too deeply") from None


@dataclass(frozen=True)
class RequestOptions:
    """The message options one request gives each message it sends."""

    attributes: Mapping[str, Any]
    delay_seconds: int = 0
    group_id: str | None = None
    deduplication_id: str | None = None

    def message(self, body: str) -> OutgoingMessage:
        return OutgoingMessage(
            body, self.attributes, self.delay_seconds, self.group_id, self.deduplication_id
        )


def request_options(req: func.HttpRequest, *, fifo: bool) -> RequestOptions:
    """The options the request carries, for a FIFO output queue or a standard one.

    Query: ``group_id``, ``deduplication_id``, ``delay_seconds``. Headers
    ``X-Message-Attribute-<name>: <value>`` become String message attributes; the name arrives in lower
    case (HTTP header names are case-insensitive).

    Anonymous sends (``HTTP_AUTH_LEVEL``) choose no group, deduplication ID or trace: ``group_id``,
    ``deduplication_id`` and ``traceparent``/``tracestate`` attributes are ignored. On a FIFO queue the
    request's messages share one group named by the request's content (``content_group``), and each gets
    the content-derived deduplication ID, so an outsider can neither flood the group of someone else's
    messages nor pre-empt their deduplication IDs: either takes the very same request.
    """
    try:
        delay = int(req.params.get("delay_seconds", "0"))
    except ValueError:
        raise BadRequest("delay_seconds must be a whole number of seconds") from None
    attributes: dict[str, Any] = {
        name[len(ATTRIBUTE_HEADER_PREFIX) :]: {"DataType": "String", "StringValue": value}
        for name, value in req.headers.items()
        if name.lower().startswith(ATTRIBUTE_HEADER_PREFIX) and len(name) > len(ATTRIBUTE_HEADER_PREFIX)
    }
    if ANONYMOUS_SENDS:
        for name in (TRACEPARENT, TRACESTATE):
            attributes.pop(name, None)
        group = content_group(req.get_body(), attributes) if fifo else None
        return RequestOptions(attributes, delay, group_id=group)
    return RequestOptions(
        attributes,
        delay,
        group_id=req.params.get("group_id") or None,
        deduplication_id=req.params.get("deduplication_id") or None,
    )


def content_group(body: bytes, attributes: Mapping[str, Any]) -> str:
    """A FIFO group ID named by a request's content: the SHA-256 of its body and attributes. The same
    request sent again (a retry) lands in the same group with the same deduplication IDs."""
    digest = hashlib.sha256(body)
    digest.update(json.dumps(attributes, sort_keys=True).encode())
    return digest.hexdigest()
