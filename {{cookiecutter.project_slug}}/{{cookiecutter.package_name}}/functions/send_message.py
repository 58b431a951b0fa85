"""The output function: POST one JSON document, get it onto the output queue."""

from __future__ import annotations

import azure.functions as func

from ..engine.http_io import answer, json_response, outgoing_message, request_json
from ..engine.runtime import output_sender
from ..engine.settings import Settings

bp = func.Blueprint()


@bp.route(route="messages", methods=["POST"])
def send_message(req: func.HttpRequest) -> func.HttpResponse:
    return answer(lambda: _send(req))


def _send(req: func.HttpRequest) -> func.HttpResponse:
    settings = Settings.from_env()
    text, _ = request_json(req, settings.max_message_bytes, "SQS_MAX_MESSAGE_BYTES")
    message_id = output_sender(settings).send(outgoing_message(text, req))
    return json_response(202, {"message_id": message_id})
