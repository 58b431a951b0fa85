"""The app's storage account, named as the Functions host names it: the ``AzureWebJobsStorage`` connection.

The drain tokens' queue and the idempotency table live in the account the host uses, so their
clients read the same settings, in the host's order:

- ``AzureWebJobsStorage``: a connection string (locally ``UseDevelopmentStorage=true``, Azurite);
- else ``AzureWebJobsStorage__<service>ServiceUri`` (or ``__accountName``) with an Entra ID
  credential: the managed identity when ``__credential=managedidentity`` (``__clientId`` for a
  user-assigned one), else the developer's own sign-in (``DefaultAzureCredential``).

azure-identity is imported on first use: not at cold start.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .settings import SettingsError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

CONNECTION = "AzureWebJobsStorage"
Service = Literal["queue", "table"]


class StorageUnavailable(SettingsError):
    """No setting names the storage account; the message names the settings."""


@dataclass(frozen=True)
class StorageAddress:
    """Either a connection string, or a service URI and how to sign in to it."""

    connection_string: str = ""
    service_uri: str = ""
    managed_identity: bool = False
    client_id: str | None = None

    def credential(self) -> TokenCredential:
        return storage_credential(self.managed_identity, self.client_id)


def storage_address(
    service: Service, purpose: str, environ: Mapping[str, str] | None = None
) -> StorageAddress:
    """Where ``service`` of the app's account is; ``purpose`` names the feature in the error."""
    env = os.environ if environ is None else environ
    connection_string = env.get(CONNECTION, "").strip()
    if connection_string:
        return StorageAddress(connection_string=connection_string)
    service_uri = env.get(f"{CONNECTION}__{service}ServiceUri", "").strip()
    account = env.get(f"{CONNECTION}__accountName", "").strip()
    if not service_uri and account:
        service_uri = f"https://{account}.{service}.core.windows.net"
    if not service_uri:
        raise StorageUnavailable(
            f"no storage account for {purpose}: set {CONNECTION} (a connection string; locally "
            f"UseDevelopmentStorage=true for Azurite) or {CONNECTION}__{service}ServiceUri with "
            f"{CONNECTION}__credential=managedidentity"
        )
    return StorageAddress(
        service_uri=service_uri,
        managed_identity=env.get(f"{CONNECTION}__credential", "").strip().lower() == "managedidentity",
        client_id=env.get(f"{CONNECTION}__clientId", "").strip() or None,
    )


@functools.cache
def storage_credential(managed_identity: bool, client_id: str | None) -> TokenCredential:
    """One credential per process and identity: MSAL caches its tokens per instance."""
    if managed_identity:
        from .managed_identity import managed_identity_credential

        return managed_identity_credential(client_id)
    # Like the host: without __credential, the developer's own sign-in (az login, environment).
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()
