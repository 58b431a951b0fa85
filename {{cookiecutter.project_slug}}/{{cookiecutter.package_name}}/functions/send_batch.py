"""The batch function: POST a JSON array; each item becomes one message, sent in batches."""

from __future__ import annotations

import azure.functions as func

from ..engine.http_io import (
    MAX_BATCH_REQUEST_BYTES,
    BadRequest,
    error_response,
    json_text,
    request_json,
    request_options,
)
from ..engine.output import sqs_output_http
from ..engine.producer import OutgoingMessage
from ..engine.queues import is_fifo
from ..engine.settings import Settings

bp = func.Blueprint()


@bp.route(route="messages/batch", methods=["POST"])
@sqs_output_http()
def send_message_batch(req: func.HttpRequest) -> list[OutgoingMessage] | func.HttpResponse:
    settings = Settings.from_env()
    _, items = request_json(req, MAX_BATCH_REQUEST_BYTES, "10 messages of SQS's largest size")
    if not isinstance(items, list) or not items:
        raise BadRequest("the request body must be a non-empty JSON array")
    if len(items) > settings.max_batch_items:
        message = f"{len(items)} items; at most {settings.max_batch_items} per request (SQS_MAX_BATCH_ITEMS)"
        return error_response(413, message, "TooManyItems")
    options = request_options(req, fifo=is_fifo(settings.output_queue))
    if len(items) > 1 and options.deduplication_id:
        # One ID for many messages: SQS would keep the first and drop the rest as duplicates.
        raise BadRequest(
            "deduplication_id names one message; leave it out of a batch (on FIFO queues each item is "
            "then deduplicated by its content)"
        )
    return [options.message(json_text(item)) for item in items]
