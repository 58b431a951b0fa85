"""The drain tokens reach their Storage queue with the managed identity, as in Azure (no account key).

Azurite serves HTTPS with a certificate made here and accepts Entra ID bearer tokens; the
managed-identity endpoint on 127.0.0.1 issues them, as the Functions host's does. The app is
given only what Azure gives it: ``AzureWebJobsStorage__queueServiceUri`` (and ``__clientId``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

from {{ cookiecutter.package_name }}.engine.scale_out.drain_token import DrainToken
from {{ cookiecutter.package_name }}.engine.scale_out.token_queue import (
    put_tokens,
    reset_token_queue_clients,
    token_queue_client,
)
from {{ cookiecutter.package_name }}.ops.local_dev.azurite import ACCOUNT_NAME, Azurite, start_azurite

from .conftest import USER_ASSIGNED_CLIENT_ID
from .identity_endpoint import ManagedIdentityEndpoint
from .loopback_tls import loopback_certificate

pytestmark = pytest.mark.slow

STORAGE_RESOURCE = "https://storage.azure.com"


@pytest.fixture(scope="module")
def azurite_with_entra_id(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Azurite, Path]]:
    cert, key = loopback_certificate(tmp_path_factory.mktemp("tls"))
    storage = start_azurite(https=(cert, key))
    try:
        yield storage, cert
    finally:
        storage.stop()


@pytest.mark.parametrize(
    "client_id", [None, USER_ASSIGNED_CLIENT_ID], ids=["system-assigned", "user-assigned"]
)
def test_tokens_are_put_with_the_managed_identity_and_no_key(
    azurite_with_entra_id: tuple[Azurite, Path],
    identity_endpoint: ManagedIdentityEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    client_id: str | None,
) -> None:
    storage, cert = azurite_with_entra_id
    queue_name = f"tokens-{(client_id or 'system')[:8]}"
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # trust the loopback certificate, as Azure's is
    monkeypatch.setenv("AzureWebJobsStorage__queueServiceUri", f"{storage.endpoints['queue']}/{ACCOUNT_NAME}")
    monkeypatch.setenv("AzureWebJobsStorage__credential", "managedidentity")
    if client_id:
        monkeypatch.setenv("AzureWebJobsStorage__clientId", client_id)
    else:
        monkeypatch.delenv("AzureWebJobsStorage__clientId", raising=False)
    reset_token_queue_clients()
    token = DrainToken("in", 1_000.0, 60, "identity")
    try:
        assert put_tokens(token_queue_client(queue_name), [token, token]) == 2
    finally:
        reset_token_queue_clients()

    asked = [r for r in identity_endpoint.requests if r.token]
    assert {(r.resource, r.client_id) for r in asked} == {(STORAGE_RESOURCE, client_id)}
    assert len(asked) == 1  # one credential per process: its token is reused
    raw = QueueClient.from_connection_string(
        storage.connection_string, queue_name, connection_verify=str(cert)
    )
    texts = [m.content for m in raw.receive_messages(messages_per_page=32)]
    assert [DrainToken.decode(base64.b64decode(t).decode()) for t in texts] == [token, token]
    raw.delete_queue()
