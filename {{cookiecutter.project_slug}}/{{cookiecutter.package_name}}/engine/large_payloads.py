"""Payloads past the queue's size limit, through S3, in the format of AWS's own extended clients.

AWS's SQS extended client libraries (Java, and Python's ``amazon-sqs-extended-client``) put a body that
is too large for SQS in an S3 object, and send instead:

- a message attribute ``ExtendedPayloadSize`` (``SQSLargePayloadSize`` from older clients), of type
  ``Number``, holding the payload's size in bytes: it marks the message as a pointer;
- a body that is a JSON array, the pointer's class name then its place:
  ``["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3BucketName": ..., "s3Key": ...}]``
  (older clients name the class ``com.amazon.sqs.javamessaging.MessageS3Pointer``).

The reserved attribute is one of SQS's 10, so an offloaded message carries at most 9 of its own.

With SQS_LARGE_PAYLOAD_BUCKET set, this app speaks the same format both ways:

- the drain resolves a pointer before the handler runs (``LargePayloads.resolving``): the handler gets
  the payload as the body, the reserved attribute gone, as the extended client hands it over. A pointer
  to another bucket, a malformed pointer, or a missing object fails the message like an invalid body
  (retried, then dead-lettered as it came: the pointer, so the object must outlive it);
- with SQS_LARGE_PAYLOAD_DELETE, the object is deleted once SQS has confirmed the delete of a message
  whose handler succeeded (``deleted``, a ``PassObserver`` hook), never before it, and never for a
  message that went to the DLQ. The extended client deletes the object first, then the message: a refused
  delete there leaves a message whose payload is gone;
- the sends store a body above SQS_MAX_MESSAGE_BYTES in the bucket and send the pointer (``Offloader``)
  instead of refusing it.

Without the setting nothing here runs: a pointer reaches the handler as its body, and the sends refuse a
body above the limit, as before.

Cost of one large message: the send is one PutObject and one SendMessage; the drain one GetObject beside
its share of the receive and delete batches, and, with SQS_LARGE_PAYLOAD_DELETE, one DeleteObjects for the
large messages of each delete batch (up to 10 keys a request).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .consumer.handling import is_async
from .consumer.observer import PassObserver
from .producer import MessageRejected, OutgoingMessage, default_deduplication_id

if TYPE_CHECKING:
    from .consumer import Handler, SqsMessage
    from .settings import Settings

logger = logging.getLogger(__name__)

SIZE_ATTRIBUTE = "ExtendedPayloadSize"
LEGACY_SIZE_ATTRIBUTE = "SQSLargePayloadSize"
SIZE_ATTRIBUTES = (SIZE_ATTRIBUTE, LEGACY_SIZE_ATTRIBUTE)
POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
LEGACY_POINTER_CLASS = "com.amazon.sqs.javamessaging.MessageS3Pointer"
# SQS takes 10 message attributes; an offloaded message keeps one for the size.
MAX_OWN_ATTRIBUTES = 9
# The largest body a send function reads when it may offload: the request is held in memory on the
# smallest Flex instance (512 MB) while it is stored.
MAX_OFFLOADED_BYTES = 32 * 1024 * 1024
# DeleteObjects takes up to 1,000 keys; one delete batch of SQS brings at most 10.
DELETE_OBJECTS_LIMIT = 1_000


class InvalidPointer(ValueError):
    """A message marked as offloaded whose body is no pointer this app may follow; it fails like an
    invalid body. The message names what is wrong, never the body."""


@dataclass(frozen=True)
class S3Pointer:
    bucket: str
    key: str

    def to_body(self) -> str:
        return json.dumps([POINTER_CLASS, {"s3BucketName": self.bucket, "s3Key": self.key}])

    @classmethod
    def from_body(cls, body: str, message_id: str) -> S3Pointer:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if (
            isinstance(document, list)
            and len(document) == 2
            and document[0] in (POINTER_CLASS, LEGACY_POINTER_CLASS)
            and isinstance(document[1], dict)
            and isinstance(document[1].get("s3BucketName"), str)
            and isinstance(document[1].get("s3Key"), str)
        ):
            return cls(document[1]["s3BucketName"], document[1]["s3Key"])
        raise InvalidPointer(
            f"message {message_id} carries {SIZE_ATTRIBUTE} but its body is not an extended client's "
            f"S3 pointer (a JSON array: {POINTER_CLASS}, then an object with s3BucketName and s3Key)"
        )


def is_offloaded(message: SqsMessage) -> bool:
    return any(name in message.message_attributes for name in SIZE_ATTRIBUTES)


class PayloadBucket:
    """The one bucket this app reads payloads from and stores them in (SQS_LARGE_PAYLOAD_BUCKET)."""

    # ``client`` is boto3's S3 client (typed Any: the app's stubs cover SQS, STS and CloudWatch only).
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def read(self, message: SqsMessage) -> SqsMessage:
        """The message with its payload as the body and the size attribute gone."""
        pointer = S3Pointer.from_body(message.body, message.message_id)
        if pointer.bucket != self.bucket:
            raise InvalidPointer(
                f"message {message.message_id} points to bucket {pointer.bucket}, not to "
                f"SQS_LARGE_PAYLOAD_BUCKET ({self.bucket}), the only one the app may read"
            )
        payload = self.client.get_object(Bucket=pointer.bucket, Key=pointer.key)["Body"].read()
        expected = next(
            (
                message.message_attributes[n].get("StringValue")
                for n in SIZE_ATTRIBUTES
                if n in message.message_attributes
            ),
            None,
        )
        if expected is not None and expected.isdigit() and int(expected) != len(payload):
            raise InvalidPointer(
                f"message {message.message_id}: its payload object holds {len(payload)} bytes, "
                f"its {SIZE_ATTRIBUTE} says {expected}"
            )
        attributes = {k: v for k, v in message.message_attributes.items() if k not in SIZE_ATTRIBUTES}
        return replace(message, body=payload.decode("utf-8"), message_attributes=attributes)

    def store(self, body: bytes) -> S3Pointer:
        pointer = S3Pointer(self.bucket, str(uuid.uuid4()))
        self.client.put_object(Bucket=pointer.bucket, Key=pointer.key, Body=body)
        return pointer

    def delete(self, pointers: Sequence[S3Pointer]) -> None:
        """Deletes the objects, DELETE_OBJECTS_LIMIT a request; a failure is logged, never raised."""
        keys = [p.key for p in pointers]
        for start in range(0, len(keys), DELETE_OBJECTS_LIMIT):
            chunk = keys[start : start + DELETE_OBJECTS_LIMIT]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
                )
            except Exception as error:
                logger.warning(
                    "could not delete %d payload object(s) from %s: %s", len(chunk), self.bucket, error
                )
                continue
            for failed in answer.get("Errors", []):
                logger.warning(
                    "could not delete payload object %s from %s: %s",
                    failed.get("Key"),
                    self.bucket,
                    failed.get("Code"),
                )


class LargePayloads(PassObserver):
    """One drain pass's pointers: resolved before the handler, deleted after SQS confirmed the message's
    delete (when asked). A ``PassObserver``: the pass tells it which deletes SQS confirmed."""

    def __init__(self, bucket: PayloadBucket, *, delete_after: bool) -> None:
        self.bucket = bucket
        self.delete_after = delete_after
        # Receipt handle -> pointer, of messages whose handler succeeded (their delete is on its way).
        self._handled: dict[str, S3Pointer] = {}
        self._lock = threading.Lock()
        # One thread: object deletes never hold up the pass's ack threads.
        self._deleter = ThreadPoolExecutor(1, thread_name_prefix="s3-payload-delete")

    def resolving(self, handler: Handler) -> Handler:
        """``handler``, handed the payload of an offloaded message instead of its pointer."""
        if is_async(handler):

            @functools.wraps(handler)
            async def resolve_then_await(message: SqsMessage) -> None:
                resolved = await asyncio.to_thread(self._resolve, message)
                result = handler(resolved)
                if inspect.isawaitable(result):
                    await result
                self._handled_ok(message)

            return resolve_then_await

        @functools.wraps(handler)
        def resolve_then_call(message: SqsMessage) -> Any:
            result = handler(self._resolve(message))
            if inspect.isawaitable(result):  # a plain function that returned an awaitable

                async def then() -> None:
                    await result
                    self._handled_ok(message)

                return then()
            self._handled_ok(message)
            return None

        return resolve_then_call

    def _resolve(self, message: SqsMessage) -> SqsMessage:
        return self.bucket.read(message) if is_offloaded(message) else message

    def _handled_ok(self, message: SqsMessage) -> None:
        if self.delete_after and is_offloaded(message):
            pointer = S3Pointer.from_body(message.body, message.message_id)
            with self._lock:
                self._handled[message.receipt_handle] = pointer

    # PassObserver

    def deleted(self, messages: Sequence[SqsMessage]) -> None:
        with self._lock:
            pointers = [p for m in messages if (p := self._handled.pop(m.receipt_handle, None))]
        if pointers:
            self._deleter.submit(self.bucket.delete, pointers)

    def pass_finished(self, summary: object) -> None:
        self._deleter.shutdown(wait=True)


class Offloader:
    """Stores a body above the queue's limit in the bucket and sends its pointer instead."""

    def __init__(self, bucket: PayloadBucket) -> None:
        self.bucket = bucket

    def fit(self, message: OutgoingMessage, max_bytes: int, *, fifo: bool) -> OutgoingMessage:
        if message.size_bytes() <= max_bytes:
            return message
        reserved = [name for name in message.attributes if name in SIZE_ATTRIBUTES]
        if reserved:
            raise MessageRejected("InvalidAttributeName", f"message attribute {reserved[0]} is reserved")
        if len(message.attributes) > MAX_OWN_ATTRIBUTES:
            raise MessageRejected(
                "TooManyAttributes",
                f"a message stored in S3 may carry at most {MAX_OWN_ATTRIBUTES} attributes of its own, "
                f"not {len(message.attributes)}",
            )
        body = message.body.encode()
        pointer = self.bucket.store(body)
        size = {"DataType": "Number", "StringValue": str(len(body))}
        # FIFO: deduplicate on the content, not on the pointer (a new key each time).
        dedup = message.deduplication_id or (default_deduplication_id(message) if fifo else None)
        return replace(
            message,
            body=pointer.to_body(),
            attributes={**message.attributes, SIZE_ATTRIBUTE: size},  # type: ignore[dict-item]
            deduplication_id=dedup,
        )


def payload_bucket(settings: Settings) -> PayloadBucket | None:
    """The configured bucket, or None when SQS_LARGE_PAYLOAD_BUCKET is empty."""
    if not settings.large_payload_bucket:
        return None
    from .aws_session import s3_client

    return PayloadBucket(s3_client(settings), settings.large_payload_bucket)
