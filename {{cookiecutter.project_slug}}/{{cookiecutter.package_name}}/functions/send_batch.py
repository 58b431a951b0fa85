"""The batch function: POST a JSON array; each item becomes one message, sent in batches."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from ..engine.http_io import (
    MAX_BATCH_REQUEST_BYTES,
    BadRequest,
    error_response,
    outgoing_message,
    request_json,
)
from ..engine.output import sqs_output_http
from ..engine.producer import OutgoingMessage
from ..engine.settings import Settings

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.route(route="messages/batch", methods=["POST"])
@sqs_output_http()
def send_message_batch(req: func.HttpRequest) -> list[OutgoingMessage] | func.HttpResponse:
    _, items = request_json(req, MAX_BATCH_REQUEST_BYTES, "10 messages of SQS's largest size")
    if not isinstance(items, list) or not items:
        raise BadRequest("the request body must be a non-empty JSON array")
    max_items = Settings.from_env().max_batch_items
    if len(items) > max_items:
        return error_response(413, f"{len(items)} items; at most {max_items} per request")
    if len(items) > 1 and req.params.get("deduplication_id"):
        # One ID for many messages: SQS would keep the first and drop the rest as duplicates.
        raise BadRequest(
            "deduplication_id names one message; leave it out of a batch (on FIFO queues each item is "
            "then deduplicated by its content)"
        )
    return [outgoing_message(json.dumps(item), req) for item in items]
