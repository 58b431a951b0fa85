"""The Storage queue of drain tokens, reached the way the Functions host reaches it.

The queue trigger reads the account named by the ``AzureWebJobsStorage`` connection, so
the writer reads the same settings, in the host's order:

- ``AzureWebJobsStorage``: a connection string (locally ``UseDevelopmentStorage=true``,
  Azurite; or an account key);
- else ``AzureWebJobsStorage__queueServiceUri`` (or ``__accountName``) with the managed
  identity (``AzureWebJobsStorage__clientId`` for a user-assigned one, as the host uses it),
  which needs the Storage Queue Data Contributor role on the account.

The host decodes queue-trigger messages from base64 (host.json ``messageEncoding``,
default base64), so tokens are written base64-encoded.

azure-storage-queue and azure-identity are imported on first use: not at cold start.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .drain_token import DrainToken

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.queue import QueueClient

logger = logging.getLogger(__name__)

CONNECTION = "AzureWebJobsStorage"


class TokenQueueUnavailable(RuntimeError):
    """No setting says where the token queue is; the message names the settings."""


def token_queue_client(queue_name: str, environ: Mapping[str, str] | None = None) -> QueueClient:
    """A client for ``queue_name`` in the ``AzureWebJobsStorage`` account (one per process and queue)."""
    env = os.environ if environ is None else environ
    connection_string = env.get(CONNECTION, "").strip()
    if connection_string:
        return _client_from_connection_string(connection_string, queue_name)
    service_uri = env.get(f"{CONNECTION}__queueServiceUri", "").strip()
    account = env.get(f"{CONNECTION}__accountName", "").strip()
    if not service_uri and account:
        service_uri = f"https://{account}.queue.core.windows.net"
    if not service_uri:
        raise TokenQueueUnavailable(
            f"no storage account for the drain tokens: set {CONNECTION} (a connection string; locally "
            f"UseDevelopmentStorage=true) or {CONNECTION}__queueServiceUri with the managed identity"
        )
    client_id = env.get(f"{CONNECTION}__clientId", "").strip() or None
    return _client_with_identity(service_uri, queue_name, client_id)


@functools.cache
def _client_from_connection_string(connection_string: str, queue_name: str) -> QueueClient:
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    return QueueClient.from_connection_string(
        connection_string, queue_name, message_encode_policy=TextBase64EncodePolicy()
    )


@functools.cache
def _client_with_identity(service_uri: str, queue_name: str, client_id: str | None) -> QueueClient:
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    return QueueClient(
        service_uri,
        queue_name,
        credential=_managed_identity(client_id),
        message_encode_policy=TextBase64EncodePolicy(),
    )


@functools.cache
def _managed_identity(client_id: str | None) -> TokenCredential:
    """One credential per process and identity: MSAL caches its tokens per instance."""
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id)


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
            _create_queue(client)
            _put(client, token)
    return len(tokens)


def _put(client: QueueClient, token: DrainToken) -> None:
    # Storage drops the token itself once it is stale; the worker checks the age too.
    client.send_message(token.encode(), time_to_live=max(1, math.ceil(token.budget_seconds)))


def _create_queue(client: QueueClient) -> None:
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):  # another writer made it first
        client.create_queue()


def reset_token_queue_clients() -> None:
    """Forget cached clients and credentials (tests, or after rotating settings)."""
    _client_from_connection_string.cache_clear()
    _client_with_identity.cache_clear()
    _managed_identity.cache_clear()
