"""Idempotent handlers: a body runs at most once per key, with its state in Azure Table storage.

- ``record``: a key's record and its states (in progress under a lease, complete, expired);
- ``table_store``: the records in a table, claimed and settled with ETag conditions; a
  storage failure is retried as the store's, never counted as the message's;
- ``lease``: keeps a running attempt's lease alive, and retries the end of an ended one;
- ``decorator``: ``@idempotent()`` for sync and async handlers.

``python -m <package> idempotency purge`` deletes the records past their TTL.
"""

from .decorator import idempotent, message_id
from .record import AttemptInProgress
from .table_store import StoreUnavailable, TableStore, table_client

__all__ = ["AttemptInProgress", "StoreUnavailable", "TableStore", "idempotent", "message_id", "table_client"]
