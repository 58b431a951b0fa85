"""The FIFO attempt ledger (consumer/attempts.py) in the app's storage account: a Table entity
per message that a pass gave back with attempts SQS did not count.

Partition: the input queue's name; row: the message ID; ``Uncounted``: the attempts SQS missed.
Table transactions: one upsert per hand-back of a message mid-retry (budget, stop, the 12-hour
limit) and per move to the DLQ after retries in the pass; one query per received unit of a FIFO
group that holds a message SQS delivered before; one delete once such a message is gone. None
at all on a queue where nothing fails. The table is made by the first write that finds it
missing.

azure-data-tables (and azure-identity, in Azure) load at the first call, not at cold start.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .queues import queue_name
from .storage_account import StorageAddress, StorageUnavailable, storage_address

if TYPE_CHECKING:
    from azure.data.tables import TableClient

logger = logging.getLogger(__name__)

TABLE = "sqsattempts"
# A query names at most 15 keys: the partition and up to 14 rows.
ROWS_PER_QUERY = 14


class TableAttemptLedger:
    """``AttemptLedger`` on a Table; thread-safe as the SDK client is."""

    def __init__(self, table: TableClient, queue: str) -> None:
        self._table = table
        self._partition = queue_name(queue)

    def recall(self, message_ids: Sequence[str]) -> dict[str, int]:
        from azure.core.exceptions import ResourceNotFoundError

        found: dict[str, int] = {}
        for start in range(0, len(message_ids), ROWS_PER_QUERY):
            rows = list(message_ids[start : start + ROWS_PER_QUERY])
            parameters = {"partition": self._partition, **{f"row{n}": row for n, row in enumerate(rows)}}
            rows_filter = " or ".join(f"RowKey eq @row{n}" for n in range(len(rows)))
            try:
                # Spaces around each @name: the SDK substitutes whole words only.
                entities = self._table.query_entities(
                    f"PartitionKey eq @partition and ( {rows_filter} )", parameters=parameters
                )
                found.update({str(e["RowKey"]): int(e.get("Uncounted", 0)) for e in entities})
            except ResourceNotFoundError:  # no pass has written one yet
                return found
        return found

    def note(self, uncounted: Mapping[str, int]) -> None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        for message_id, count in uncounted.items():
            entity = {"PartitionKey": self._partition, "RowKey": message_id, "Uncounted": count}
            try:
                self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
            except ResourceNotFoundError:
                logger.info("table %s does not exist; creating it", TABLE)
                with contextlib.suppress(ResourceExistsError):  # another pass made it first
                    self._table.create_table()
                self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def forget(self, message_ids: Sequence[str]) -> None:
        for message_id in message_ids:
            self._table.delete_entity(self._partition, message_id)  # absent: no error


def attempt_ledger(queue: str, environ: Mapping[str, str] | None = None) -> TableAttemptLedger | None:
    """The ledger of ``queue``'s attempts in the ``AzureWebJobsStorage`` account; None when no
    setting names that account (the ops CLI run without storage)."""
    try:
        address = storage_address("table", "the FIFO attempt ledger", environ)
    except StorageUnavailable:
        return None
    return TableAttemptLedger(_table(address), queue)


@functools.cache
def _table(address: StorageAddress) -> TableClient:
    from azure.data.tables import TableClient

    # On a pass's path (a hand-back, a received message): an unreachable account fails in seconds.
    options: dict[str, Any] = {"retry_total": 2, "connection_timeout": 5, "read_timeout": 10}
    if address.connection_string:
        return TableClient.from_connection_string(address.connection_string, TABLE, **options)
    return TableClient(address.service_uri, TABLE, credential=address.credential(), **options)


def reset_attempt_ledger_clients() -> None:
    """Forget cached clients (tests, or after rotating settings)."""
    _table.cache_clear()
