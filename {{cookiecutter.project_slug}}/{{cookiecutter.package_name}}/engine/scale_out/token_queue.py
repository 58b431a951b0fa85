"""The Storage queue of drain tokens, reached the way the Functions host reaches it.

The queue trigger reads the account named by the ``AzureWebJobsStorage`` connection, so the
writer reaches it the same way (``storage_account``); with the managed identity it needs the
Storage Queue Data Contributor role on the account.

The host decodes queue-trigger messages from base64 (host.json ``messageEncoding``,
default base64), so tokens are written base64-encoded.

azure-storage-queue and azure-identity are imported on first use: not at cold start.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..storage_account import StorageAddress, storage_address, storage_credential
from .drain_token import DrainToken

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

logger = logging.getLogger(__name__)


def token_queue_client(queue_name: str, environ: Mapping[str, str] | None = None) -> QueueClient:
    """A client for ``queue_name`` in the ``AzureWebJobsStorage`` account (one per process and queue)."""
    return _client(storage_address("queue", "the drain tokens", environ), queue_name)


@functools.cache
def _client(address: StorageAddress, queue_name: str) -> QueueClient:
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    encoding = TextBase64EncodePolicy()
    if address.connection_string:
        return QueueClient.from_connection_string(
            address.connection_string, queue_name, message_encode_policy=encoding
        )
    return QueueClient(
        address.service_uri, queue_name, credential=address.credential(), message_encode_policy=encoding
    )


def put_tokens(client: QueueClient, tokens: Sequence[DrainToken]) -> int:
    """Put each token, to expire after its budget; creates the queue if it is missing."""
    from azure.core.exceptions import ResourceNotFoundError

    for number, token in enumerate(tokens):
        try:
            _put(client, token)
        except ResourceNotFoundError:
            if number:
                raise
            logger.info("token queue %s does not exist; creating it", client.queue_name)
            create_token_queue(client)
            _put(client, token)
    return len(tokens)


def _put(client: QueueClient, token: DrainToken) -> None:
    # Storage drops the token itself once it is stale; the worker checks the age too.
    client.send_message(token.encode(), time_to_live=max(1, math.ceil(token.budget_seconds)))


def create_token_queue(client: QueueClient) -> None:
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):  # another writer made it first
        client.create_queue()


def reset_token_queue_clients() -> None:
    """Forget cached clients and credentials (tests, or after rotating settings)."""
    _client.cache_clear()
    storage_credential.cache_clear()


def tokens_queued(client: QueueClient) -> int:
    """The queue's approximate message count: tokens waiting, and those whose pass still runs."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return int(client.get_queue_properties().approximate_message_count or 0)
    except ResourceNotFoundError:  # no tick made the queue yet
        return 0
