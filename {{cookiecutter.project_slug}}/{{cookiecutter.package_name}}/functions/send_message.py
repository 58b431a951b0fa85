"""The output function: POST one JSON document, get it onto the output queue."""

from __future__ import annotations

import azure.functions as func

from ..engine.http_io import request_json, request_options
from ..engine.output import sqs_output_http
from ..engine.producer import OutgoingMessage
from ..engine.queues import is_fifo
from ..engine.settings import Settings

bp = func.Blueprint()


@bp.route(route="messages", methods=["POST"])
@sqs_output_http()
def send_message(req: func.HttpRequest) -> OutgoingMessage:
    settings = Settings.from_env()
    if settings.large_payload_bucket:  # a larger body goes to S3 (engine/large_payloads.py)
        from ..engine.large_payloads import MAX_OFFLOADED_BYTES  # at the first send, not at indexing

        text, _ = request_json(req, MAX_OFFLOADED_BYTES, "the largest payload stored in S3")
    else:
        text, _ = request_json(req, settings.max_message_bytes, "SQS_MAX_MESSAGE_BYTES")
    return request_options(req, fifo=is_fifo(settings.output_queue)).message(text)
