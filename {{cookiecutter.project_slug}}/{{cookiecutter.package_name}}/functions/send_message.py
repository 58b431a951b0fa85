"""The output function: POST one JSON document, get it onto the output queue."""

from __future__ import annotations

import logging

import azure.functions as func

from ..producer import MessageRejected
from ..runtime import output_sender
from .http_io import BadRequest, error_response, json_response, outgoing_message, parse_json_body

logger = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.route(route="messages", methods=["POST"])
def send_message(req: func.HttpRequest) -> func.HttpResponse:
    try:
        parse_json_body(req)
        message = outgoing_message(req.get_body().decode(), req)
        message_id = output_sender().send(message)
    except BadRequest as error:
        return error_response(400, str(error))
    except MessageRejected as error:
        return error_response(413 if error.code == "MessageTooLarge" else 400, str(error))
    except Exception:
        logger.exception("SendMessage failed")
        return error_response(502, "the output queue did not accept the message; retry later")
    return json_response(202, {"message_id": message_id})
