"""The output function: POST one JSON document, get it onto the output queue."""

from __future__ import annotations

import azure.functions as func

from ..engine.http_io import outgoing_message, request_json
from ..engine.output import sqs_output_http
from ..engine.producer import OutgoingMessage
from ..engine.settings import Settings

bp = func.Blueprint()


@bp.route(route="messages", methods=["POST"])
@sqs_output_http()
def send_message(req: func.HttpRequest) -> OutgoingMessage:
    max_bytes = Settings.from_env().max_message_bytes
    text, _ = request_json(req, max_bytes, "SQS_MAX_MESSAGE_BYTES")
    return outgoing_message(text, req)
