"""What the two HTTP send functions share: request parsing, message options, error answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func

from .producer import MessageRejected, OutgoingMessage
from .settings import SettingsError

logger = logging.getLogger(__name__)

ATTRIBUTE_HEADER_PREFIX = "x-message-attribute-"


class BadRequest(ValueError):
    """The request is malformed; the message tells the caller what to fix."""


def json_response(status_code: int, payload: Any) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload), status_code=status_code, mimetype="application/json")


def error_response(status_code: int, message: str) -> func.HttpResponse:
    return json_response(status_code, {"error": message})


def answer(send: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    """Runs a send; every way it can fail gets its own status, and the caller a reason."""
    try:
        return send()
    except BadRequest as error:
        return error_response(400, str(error))
    except MessageRejected as error:
        return error_response(413 if error.code == "MessageTooLarge" else 400, str(error))
    except SettingsError:
        logger.exception("the app is misconfigured")
        return error_response(500, "the app is misconfigured; its logs say which setting")
    except Exception:
        logger.exception("sending to the output queue failed")
        return error_response(502, "the output queue did not accept the message(s); retry later")


def request_json(req: func.HttpRequest) -> tuple[str, Any]:
    """The body as text, and parsed; it must be JSON in UTF-8."""
    try:
        text = req.get_body().decode("utf-8")
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
