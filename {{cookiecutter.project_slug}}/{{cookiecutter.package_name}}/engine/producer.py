"""Sending to SQS: one message, or many in batches that never drop an entry in silence.

``Sender.send_batch`` splits by 10 entries and by bytes, retries the entries SQS
failed through no fault of ours (``SenderFault=false``) with backoff, and returns
every entry that finally failed, with its reason.

Every send is traced (``telemetry.sending``): the message carries its span's W3C context in its
``traceparent``/``tracestate`` attributes, room permitting, so the drain's handler continues it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from .queues import SQS_BATCH_LIMIT, is_fifo, queue_name

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

    from .large_payloads import Offloader

logger = logging.getLogger(__name__)

SQS_MAX_DELAY_SECONDS = 900
# Refusals of what the sender gave: the body, the attributes (more than 10, a reserved or malformed
# name), the group or deduplication ID, the delay. Our own checks' codes, then SQS's (LocalStack
# names InvalidParameterValue with its JSON-protocol suffix). Anything else SQS refuses (access, a
# missing queue, its KMS key) is the app's to fix, not the sender's.
SENDER_INPUT_CODES = frozenset(
    {
        "MessageTooLarge",
        "InvalidDelay",
        "MissingGroupId",
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "InvalidMessageContents",
    }
)


class MessageRejected(ValueError):
    """A message that cannot be sent as given; the message says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class PayloadNotStored(MessageRejected):
    """A body above the limit could not be stored in S3; retrying may help."""


@dataclass(frozen=True)
class OutgoingMessage:
    body: str
    attributes: Mapping[str, MessageAttributeValueTypeDef] = field(default_factory=dict)
    delay_seconds: int = 0
    group_id: str | None = None
    deduplication_id: str | None = None

    def size_bytes(self) -> int:
        """Bytes SQS counts against its size limit: body plus attribute names, types and values."""
        size = len(self.body.encode())
        for name, value in self.attributes.items():
            size += len(name.encode()) + len(value["DataType"].encode())
            size += len(value.get("StringValue", "").encode())
            binary = value.get("BinaryValue")
            size += len(binary) if isinstance(binary, bytes | bytearray) else 0
        return size


@dataclass(frozen=True)
class SendFailure:
    index: int
    code: str
    reason: str
    # A refusal: sending it again, unchanged, will not help (SQS's SenderFault, or a 4xx answer).
    sender_fault: bool

    @property
    def sender_input(self) -> bool:
        """Refused for what the sender gave (body, attributes, IDs): theirs to fix."""
        return self.sender_fault and self.code in SENDER_INPUT_CODES


def refusal(error: Exception) -> tuple[str, bool]:
    """A failed SQS call's error code, and whether it is a refusal (a 4xx answer other than
    throttling) rather than a failure that a later retry may get past (throttling, 5xx, network)."""
    answer = getattr(error, "response", None) or {}
    code = str(answer.get("Error", {}).get("Code") or type(error).__name__)
    status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code, 400 <= status < 500 and "Throttl" not in code


@dataclass
class BatchResult:
    message_ids: dict[int, str] = field(default_factory=dict)
    failures: list[SendFailure] = field(default_factory=list)
    requests: int = 0

    @property
    def sent(self) -> int:
        return len(self.message_ids)

    @property
    def failed(self) -> int:
        return len(self.failures)


class Sender:
    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        max_message_bytes: int = 262_144,
        max_attempts: int = 3,
        backoff_seconds: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        offloader: Offloader | None = None,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.queue_name = queue_name(queue_url)
        self.fifo = is_fifo(queue_url)
        self.max_message_bytes = max_message_bytes
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        # Stores a body above max_message_bytes in S3 and sends its pointer (large_payloads.py).
        self.offloader = offloader

    def send(self, message: OutgoingMessage) -> str:
        """Send one message; returns its MessageId. Raises ``MessageRejected`` before any call."""
        message = self.offloaded(message)
        self.check(message)
        from .telemetry import names, sending  # OpenTelemetry loads at the first send, not at indexing

        with sending.send_span(self.queue_name) as span:
            message = sending.sent_alone(self.queue_name, message, self.max_message_bytes)
            response = self.client.send_message(
                QueueUrl=self.queue_url, MessageBody=message.body, **self._options(message)
            )
            span.set_attribute(names.MESSAGE_ID, response["MessageId"])
        return response["MessageId"]

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> BatchResult:
        from .telemetry import sending

        with sending.send_span(self.queue_name, batch_size=len(messages)):
            return self._send_batch(list(messages), sending.created)

    def _send_batch(
        self, messages: list[OutgoingMessage], created: Callable[[str, OutgoingMessage, int], OutgoingMessage]
    ) -> BatchResult:
        result = BatchResult()
        sendable: list[int] = []
        for index in range(len(messages)):
            try:
                messages[index] = message = self.offloaded(messages[index])
                self.check(message)
            except MessageRejected as rejected:
                refused = not isinstance(rejected, PayloadNotStored)
                result.failures.append(SendFailure(index, rejected.code, str(rejected), refused))
            else:
                sendable.append(index)
                messages[index] = created(self.queue_name, message, self.max_message_bytes)
        for chunk in self._chunks(messages, sendable):
            self._send_chunk(messages, chunk, result)
        result.failures.sort(key=lambda failure: failure.index)
        return result

    def offloaded(self, message: OutgoingMessage) -> OutgoingMessage:
        """The message, or its S3 pointer when it is too large and a bucket is configured."""
        if self.offloader is None:
            return message
        try:
            return self.offloader.fit(message, self.max_message_bytes, fifo=self.fifo)
        except MessageRejected:
            raise
        except Exception as error:  # S3 refused or failed: a retry may help, as with SQS's own failures
            logger.warning("could not store a large payload in S3: %s", error)
            raise PayloadNotStored("PayloadNotStored", "the payload could not be stored in S3") from error

    def check(self, message: OutgoingMessage) -> None:
        size = message.size_bytes()
        if size > self.max_message_bytes:
            raise MessageRejected(
                "MessageTooLarge",
                f"message is {size} bytes; the limit is {self.max_message_bytes} (SQS_MAX_MESSAGE_BYTES)",
            )
        if not 0 <= message.delay_seconds <= SQS_MAX_DELAY_SECONDS:
            raise MessageRejected(
                "InvalidDelay",
                f"delay_seconds must be 0-{SQS_MAX_DELAY_SECONDS}, not {message.delay_seconds}",
            )
        if self.fifo and not message.group_id:
            raise MessageRejected("MissingGroupId", "a FIFO queue needs a message group ID (group_id)")
        if self.fifo and message.delay_seconds:
            raise MessageRejected("InvalidDelay", "FIFO queues take no per-message delay")

    def _chunks(self, messages: Sequence[OutgoingMessage], indexes: list[int]) -> Iterator[list[int]]:
        chunk: list[int] = []
        chunk_bytes = 0
        for index in indexes:
            size = messages[index].size_bytes()
            if chunk and (len(chunk) == SQS_BATCH_LIMIT or chunk_bytes + size > self.max_message_bytes):
                yield chunk
                chunk, chunk_bytes = [], 0
            chunk.append(index)
            chunk_bytes += size
        if chunk:
            yield chunk

    def _send_chunk(self, messages: Sequence[OutgoingMessage], chunk: list[int], result: BatchResult) -> None:
        pending = chunk
        for attempt in range(1, self.max_attempts + 1):
            result.requests += 1
            try:
                response = self.client.send_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[self._entry(str(i), messages[i]) for i in pending],
                )
            except Exception as error:  # botocore has already retried the request itself
                logger.warning("SendMessageBatch failed: %s", error)
                code, refused = refusal(error)
                result.failures.extend(SendFailure(i, code, str(error), refused) for i in pending)
                return
            for success in response.get("Successful", []):
                result.message_ids[int(success["Id"])] = success["MessageId"]
            retry: list[int] = []
            answered = set(result.message_ids) | {int(f["Id"]) for f in response.get("Failed", [])}
            for index in pending:
                if index not in answered:  # neither sent nor refused: say so rather than guess
                    result.failures.append(
                        SendFailure(index, "NoAnswer", "SQS did not report this entry", False)
                    )
            for failure in response.get("Failed", []):
                index = int(failure["Id"])
                if not failure["SenderFault"] and attempt < self.max_attempts:
                    retry.append(index)
                    continue
                result.failures.append(
                    SendFailure(index, failure["Code"], failure.get("Message", ""), failure["SenderFault"])
                )
            if not retry:
                return
            pending = retry
            self.sleep(self.backoff_seconds * 2 ** (attempt - 1))

    def _entry(self, entry_id: str, message: OutgoingMessage) -> SendMessageBatchRequestEntryTypeDef:
        entry = {"Id": entry_id, "MessageBody": message.body, **self._options(message)}
        return cast("SendMessageBatchRequestEntryTypeDef", entry)

    def _options(self, message: OutgoingMessage) -> dict[str, Any]:
        """The optional request fields, shared by SendMessage and SendMessageBatch entries."""
        options: dict[str, Any] = {}
        if message.attributes:
            options["MessageAttributes"] = dict(message.attributes)
        if message.delay_seconds:
            options["DelaySeconds"] = message.delay_seconds
        if message.group_id:
            options["MessageGroupId"] = message.group_id
        if message.deduplication_id:
            options["MessageDeduplicationId"] = message.deduplication_id
        elif self.fifo:
            options["MessageDeduplicationId"] = default_deduplication_id(message)
        return options


def default_deduplication_id(message: OutgoingMessage) -> str:
    """FIFO: the SHA-256 of (group, body, attributes), canonically encoded.

    A send repeated within SQS's 5-minute window (a retry) is deduplicated; two messages that
    differ in group, body or attributes never are. Content-based deduplication hashes the body
    alone, and by default across groups, so it is not left to the queue. The trace context the send
    adds describes the send, not the message: a retried send is the same message.
    """
    from .telemetry.names import TRACEPARENT, TRACESTATE

    attributes = {
        name: {
            key: base64.b64encode(value).decode() if isinstance(value, bytes | bytearray) else value
            for key, value in attribute.items()
        }
        for name, attribute in message.attributes.items()
        if name not in (TRACEPARENT, TRACESTATE)
    }
    canonical = json.dumps(
        [message.group_id, message.body, attributes], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
