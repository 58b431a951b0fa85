"""Idempotent handlers: a body runs at most once per key, with its state in Azure Table storage.

- ``record``: a key's record and its states (in progress under a lease, complete, expired);
- ``table_store``: the records in a table, claimed and settled with ETag conditions;
- ``lease``: keeps a running attempt's lease alive;
- ``decorator``: ``@idempotent()`` for sync and async handlers.

``python -m <package> idempotency purge`` deletes the records past their TTL.
"""

from .decorator import idempotent, message_id
from .record import AttemptInProgress
from .table_store import TableStore, table_client

__all__ = ["AttemptInProgress", "TableStore", "idempotent", "message_id", "table_client"]
