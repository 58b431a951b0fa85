"""What the two HTTP send functions share: JSON responses and message options from a request."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from ..producer import OutgoingMessage

ATTRIBUTE_HEADER_PREFIX = "x-message-attribute-"


class BadRequest(ValueError):
    """The request is malformed; the message tells the caller what to fix."""


def json_response(status_code: int, payload: Any) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload), status_code=status_code, mimetype="application/json")


def error_response(status_code: int, message: str) -> func.HttpResponse:
    return json_response(status_code, {"error": message})


def parse_json_body(req: func.HttpRequest) -> Any:
    try:
        return json.loads(req.get_body())
    except ValueError:
        raise BadRequest("the request body must be valid JSON") from None


def outgoing_message(body: str, req: func.HttpRequest) -> OutgoingMessage:
    """A message with the options the request carries.

    Query: ``group_id``, ``deduplication_id``, ``delay_seconds``.
    Headers ``X-Message-Attribute-<name>: <value>`` become String message attributes; the
    name arrives in lower case (HTTP header names are case-insensitive).
    """
    delay = req.params.get("delay_seconds", "0")
    if not delay.isdigit():
        raise BadRequest("delay_seconds must be a whole number of seconds")
    attributes: dict[str, Any] = {
        name[len(ATTRIBUTE_HEADER_PREFIX) :]: {"DataType": "String", "StringValue": value}
        for name, value in req.headers.items()
        if name.lower().startswith(ATTRIBUTE_HEADER_PREFIX) and len(name) > len(ATTRIBUTE_HEADER_PREFIX)
    }
    return OutgoingMessage(
        body=body,
        attributes=attributes,
        delay_seconds=int(delay),
        group_id=req.params.get("group_id") or None,
        deduplication_id=req.params.get("deduplication_id") or None,
    )
