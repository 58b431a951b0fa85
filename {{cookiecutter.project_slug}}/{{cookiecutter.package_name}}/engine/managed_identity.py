"""The app's managed identity credential, made in one place for every Azure and AWS use of it."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.identity import ManagedIdentityCredential


def managed_identity_credential(client_id: str | None) -> ManagedIdentityCredential:
    """One credential per process and identity (empty client ID: the system-assigned one)."""
    return _credential(client_id or None)


# MSAL caches tokens per credential instance: a new instance per call would ask for a token each time.
@functools.cache
def _credential(client_id: str | None) -> ManagedIdentityCredential:
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id)


def forget_credentials() -> None:
    """Drop the cached credentials (tests, or after changing identities)."""
    _credential.cache_clear()
