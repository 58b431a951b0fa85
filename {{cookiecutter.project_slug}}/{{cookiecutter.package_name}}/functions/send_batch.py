"""The batch function: POST a JSON array; each item becomes one message, sent in batches."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from ..engine.http_io import (
    MAX_BATCH_REQUEST_BYTES,
    BadRequest,
    answer,
    error_response,
    json_response,
    outgoing_message,
    request_json,
)
from ..engine.runtime import output_sender
from ..engine.settings import Settings

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.route(route="messages/batch", methods=["POST"])
def send_message_batch(req: func.HttpRequest) -> func.HttpResponse:
    return answer(lambda: _send_batch(req))


def _send_batch(req: func.HttpRequest) -> func.HttpResponse:
    settings = Settings.from_env()
    _, items = request_json(req, MAX_BATCH_REQUEST_BYTES, "10 messages of SQS's largest size")
    if not isinstance(items, list) or not items:
        raise BadRequest("the request body must be a non-empty JSON array")
    if len(items) > settings.max_batch_items:
        return error_response(413, f"{len(items)} items; at most {settings.max_batch_items} per request")
    if len(items) > 1 and req.params.get("deduplication_id"):
        # One ID for many messages: SQS would keep the first and drop the rest as duplicates.
        raise BadRequest(
            "deduplication_id names one message; leave it out of a batch (on FIFO queues each item is "
            "then deduplicated by its content)"
        )
    messages = [outgoing_message(json.dumps(item), req) for item in items]
    result = output_sender(settings).send_batch(messages)
    for failure in result.failures:
        logger.warning("batch item %d not sent: %s: %s", failure.index, failure.code, failure.reason)
    status = 200 if not result.failures else 207 if result.message_ids else 502
    return json_response(
        status,
        {
            "sent": result.sent,
            "failed": result.failed,
            "message_ids": [result.message_ids.get(i) for i in range(len(messages))],
            "failures": [
                # SQS's own message names accounts, roles and queue ARNs: the log has it.
                {"index": f.index, "code": f.code, "retryable": not f.sender_fault}
                for f in result.failures
            ],
        },
    )
