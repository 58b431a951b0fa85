"""The local Azure Storage emulator the app's storage features and ``func start`` rely on."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient

from {{ cookiecutter.package_name }}.ops.local_dev.azurite import Azurite

pytestmark = pytest.mark.slow


def test_azurite_serves_queues_on_loopback(azurite: Azurite, storage_connection: str) -> None:
    assert all(url.startswith("http://127.0.0.1:") for url in azurite.endpoints.values())
    queue = QueueClient.from_connection_string(storage_connection, f"q{uuid.uuid4().hex}")
    queue.create_queue()
    queue.send_message("token-1")
    received = list(queue.receive_messages(messages_per_page=32, visibility_timeout=30))
    assert [m.content for m in received] == ["token-1"]
    assert received[0].dequeue_count == 1
    queue.delete_message(received[0])
    assert list(queue.receive_messages()) == []
    queue.delete_queue()


def test_azurite_serves_tables_with_optimistic_concurrency(storage_connection: str) -> None:
    tables = TableServiceClient.from_connection_string(storage_connection)
    table = tables.create_table(f"t{uuid.uuid4().hex[:16]}")
    table.create_entity({"PartitionKey": "p", "RowKey": "r", "status": "in_progress"})
    try:
        table.create_entity({"PartitionKey": "p", "RowKey": "r", "status": "in_progress"})
    except ResourceExistsError:
        pass
    else:
        raise AssertionError("a second insert of one key must be refused (idempotency relies on it)")
    assert table.get_entity("p", "r")["status"] == "in_progress"
    tables.delete_table(table.table_name)
