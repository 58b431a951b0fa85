"""Tables in the app's storage account (storage_account.py): one way to reach each, make it, and purge it.

- ``table_client``: a client of a table, reached as the Functions host reaches the account;
- ``quick_table_client``: one per table and process, for calls on a drain's path (the pass
  slots, the FIFO attempt ledger), bounded so that an unreachable account fails in seconds;
- ``with_table``: a write that creates its table when it finds it missing (the first write
  pays for it, nothing after);
- ``purge_expired``: deletes the entities past their ``ExpiresAt`` (``idempotency purge``).

azure-data-tables (and azure-identity, in Azure) load at the first call, not at cold start.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .storage_account import StorageAddress

if TYPE_CHECKING:
    from azure.data.tables import TableClient

logger = logging.getLogger(__name__)

# Calls on a drain's path: two SDK retries, and seconds, not minutes, to give up on an account.
QUICK_CALLS: dict[str, Any] = {"retry_total": 2, "connection_timeout": 5, "read_timeout": 10}


def table_client(address: StorageAddress, table: str, **options: Any) -> TableClient:
    """A client of ``table`` at ``address``; ``options`` go to the client (retries, timeouts, policies)."""
    from azure.data.tables import TableClient

    if address.connection_string:
        return TableClient.from_connection_string(address.connection_string, table, **options)
    return TableClient(address.service_uri, table, credential=address.credential(), **options)


@functools.cache
def quick_table_client(address: StorageAddress, table: str) -> TableClient:
    """The process's client of ``table``, its calls bounded by ``QUICK_CALLS``; thread-safe."""
    return table_client(address, table, **QUICK_CALLS)


def reset_table_clients() -> None:
    """Forget the cached clients (tests, or after rotating settings)."""
    quick_table_client.cache_clear()


def with_table(table: TableClient, write: Callable[[], Any]) -> Any:
    """``write()`` (an insert or upsert: its only 404 is a missing table); makes ``table`` if missing."""
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    try:
        return write()
    except ResourceNotFoundError:
        logger.info("table %s does not exist; creating it", table.table_name)
        with contextlib.suppress(ResourceExistsError):  # another process made it first
            table.create_table()
        return write()


def purge_expired(table: TableClient, now: datetime) -> dict[str, int]:
    """Deletes the entities whose ``ExpiresAt`` is before ``now`` (one paged query, one delete each,
    conditional on the ETag read: an entity written again meanwhile is kept). A missing table has none."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

    counts = {"deleted": 0, "kept": 0}
    expired = table.query_entities(
        "ExpiresAt lt @now", parameters={"now": now}, select=["PartitionKey", "RowKey"]
    )
    with contextlib.suppress(ResourceNotFoundError):  # the query's: no table, nothing was ever written
        for entity in expired:
            try:
                table.delete_entity(
                    entity["PartitionKey"],
                    entity["RowKey"],
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                counts["deleted"] += 1
            except (ResourceModifiedError, ResourceNotFoundError):  # written again, or gone, meanwhile
                counts["kept"] += 1
    return counts
