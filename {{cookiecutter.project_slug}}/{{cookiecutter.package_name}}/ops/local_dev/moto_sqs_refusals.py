"""SQS's refusals of a send that moto accepts, applied where the embedded emulator starts.

SQS answers 400 ``InvalidParameterValue`` to a message with more than 10 message attributes, an
attribute name that is not 1-256 of ``A-Za-z0-9_.-``, has a reserved prefix (``AWS.``, ``Amazon.``,
in any case) or a period at its start, its end or twice in a row, and a group or deduplication ID
that is not 1-128 letters, digits or ASCII punctuation; and ``InvalidMessageContents`` to a body with
a character outside the XML ranges it allows, and it queues none of them. moto 5.2 queues them all:
most with no error, and a malformed attribute name with a 400 that it answers after queueing the
message. So the app's answers to those refusals (a 400 to the caller, not a 502) could not be shown
on it. Here each is refused before moto sees it; in a batch each such entry fails alone, as SQS
reports it (``Failed``, ``SenderFault``), and the others are sent.

This changes what moto decides, to what SQS decides; tests/test_emulator_fidelity.py shows each
refusal on SQS's side and on plain moto's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

_APPLIED = "_sqs_app_refusals"
SQS_MAX_MESSAGE_ATTRIBUTES = 10
ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
RESERVED_ATTRIBUTE_PREFIXES = ("aws.", "amazon.")
# Group and deduplication IDs: 1-128 of a-z, A-Z, 0-9 and !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~.
MESSAGE_ID_PATTERN = re.compile(r"[!-~]{1,128}")
# What SQS takes in a body: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
NOT_IN_A_BODY = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def refusal(
    body: str, attributes: Mapping[str, Any] | None, group_id: str | None, deduplication_id: str | None
) -> tuple[str, str] | None:
    """SQS's error code and message for a send it refuses and moto does not, or None."""
    names = list(attributes or {})
    if len(names) > SQS_MAX_MESSAGE_ATTRIBUTES:
        return "InvalidParameterValue", (
            f"Number of message attributes [{len(names)}] exceeds the allowed maximum "
            f"[{SQS_MAX_MESSAGE_ATTRIBUTES}]."
        )
    for name in names:
        if not ATTRIBUTE_NAME.fullmatch(name):
            return "InvalidParameterValue", f"The message attribute name '{name}' is invalid."
        reserved = name.lower().startswith(RESERVED_ATTRIBUTE_PREFIXES)
        if reserved or name.startswith(".") or name.endswith(".") or ".." in name:
            return "InvalidParameterValue", f"Message (user) attribute '{name}' must not use a reserved name."
    for parameter, value in (("MessageGroupId", group_id), ("MessageDeduplicationId", deduplication_id)):
        if value is not None and not MESSAGE_ID_PATTERN.fullmatch(value):
            return "InvalidParameterValue", f"Value {value} for parameter {parameter} is invalid."
    if NOT_IN_A_BODY.search(body):
        return "InvalidMessageContents", "Invalid characters found."
    return None


def refuse_like_sqs() -> None:
    """Idempotent; moto is imported here, when an emulator starts (it is a dev dependency)."""
    from moto.sqs import models
    from moto.sqs.exceptions import SQSException

    if getattr(models, _APPLIED, False):
        return
    backend: Any = models.SQSBackend
    send_one, send_many = backend.send_message, backend.send_message_batch

    @functools.wraps(send_one)
    def send_message(self: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        attributes = kwargs.get("message_attributes", args[0] if args else None)
        found = refusal(message_body, attributes, kwargs.get("group_id"), kwargs.get("deduplication_id"))
        if found:
            raise SQSException(*found)
        return send_one(self, queue_name, message_body, *args, **kwargs)

    @functools.wraps(send_many)
    def send_message_batch(self: Any, queue_name: str, entries: dict[str, dict[str, Any]]) -> Any:
        failed: list[dict[str, Any]] = []
        sendable: dict[str, dict[str, Any]] = {}
        for key, entry in entries.items():
            found = refusal(
                entry["MessageBody"],
                entry.get("MessageAttributes"),
                entry.get("MessageGroupId"),
                entry.get("MessageDeduplicationId"),
            )
            if found:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": found[0], "Message": found[1]})
            else:
                sendable[key] = entry
        if not sendable:
            return [], failed
        messages, more_failed = send_many(self, queue_name, sendable)
        return messages, [*failed, *more_failed]

    backend.send_message = send_message
    backend.send_message_batch = send_message_batch
    setattr(models, _APPLIED, True)
