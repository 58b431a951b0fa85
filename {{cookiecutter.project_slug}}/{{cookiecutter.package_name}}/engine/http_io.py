"""What the two HTTP send functions share: request parsing, message options, error answers.

An answer holds what the caller can act on and nothing of the app's insides: SQS error codes,
whether a retry may help, and our own checks' reasons; SQS's messages (which name accounts,
roles and queue ARNs) go to the log only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func

from .producer import MessageRejected, OutgoingMessage, PayloadNotStored
from .queues import SQS_BATCH_LIMIT
from .settings import SettingsError

logger = logging.getLogger(__name__)

ATTRIBUTE_HEADER_PREFIX = "x-message-attribute-"
# The largest batch request read: ten of the largest messages SQS takes (1 MiB each), as one
# SendMessageBatch could carry at most. A single send's limit is SQS_MAX_MESSAGE_BYTES.
SQS_LARGEST_MESSAGE_BYTES = 1_048_576
MAX_BATCH_REQUEST_BYTES = SQS_LARGEST_MESSAGE_BYTES * SQS_BATCH_LIMIT


class BadRequest(ValueError):
    """The request is malformed; the message tells the caller what to fix."""


class RequestTooLarge(BadRequest):
    """The body is larger than the function reads: 413, before it is parsed."""


def json_response(status_code: int, payload: Any) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload), status_code=status_code, mimetype="application/json")


def error_response(status_code: int, message: str) -> func.HttpResponse:
    return json_response(status_code, {"error": message})


def answer(send: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    """Runs a send; every way it can fail gets its own status, and the caller a reason."""
    try:
        return send()
    except RequestTooLarge as error:
        return error_response(413, str(error))
    except BadRequest as error:
        return error_response(400, str(error))
    except MessageRejected as error:
        # PayloadNotStored: S3 failed (logged by the sender), the caller may retry.
        stored = not isinstance(error, PayloadNotStored)
        status = 502 if not stored else 413 if error.code == "MessageTooLarge" else 400
        return error_response(status, str(error))
    except SettingsError:
        logger.exception("the app is misconfigured")
        return error_response(500, "the app is misconfigured; its logs say which setting")
    except Exception:
        logger.exception("sending to the output queue failed")
        return error_response(502, "the output queue did not accept the message(s); retry later")


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


def outgoing_message(body: str, req: func.HttpRequest) -> OutgoingMessage:
    """A message with the options the request carries.

    Query: ``group_id``, ``deduplication_id``, ``delay_seconds``.
    Headers ``X-Message-Attribute-<name>: <value>`` become String message attributes; the
    name arrives in lower case (HTTP header names are case-insensitive).
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
    return OutgoingMessage(
        body=body,
        attributes=attributes,
        delay_seconds=delay,
        group_id=req.params.get("group_id") or None,
        deduplication_id=req.params.get("deduplication_id") or None,
    )
