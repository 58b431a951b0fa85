"""AWS credentials with no stored secret: Azure managed identity token -> STS AssumeRoleWithWebIdentity.

botocore does the work: ``AssumeRoleWithWebIdentityCredentialFetcher`` calls STS
(unsigned, at ``AWS_ENDPOINT_URL_STS`` or ``AWS_ENDPOINT_URL`` when set) with the
token our loader returns, and ``DeferredRefreshableCredentials`` refreshes before
expiry: from 15 minutes ahead without blocking, from 10 minutes ahead blocking.
azure-identity gets the token and MSAL caches it per credential instance, so one
credential per process is built and reused. What this module adds: where the
token comes from, and errors that say which side of the trust to fix.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import boto3
import botocore.session
from azure.core.exceptions import AzureError
from azure.identity import ManagedIdentityCredential
from botocore.credentials import (
    AssumeRoleWithWebIdentityCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import ClientError

from .managed_identity import managed_identity_credential
from .settings import OidcSettings

logger = logging.getLogger(__name__)

# The Functions host (like App Service and Container Apps) announces its managed-identity
# endpoint in these. Without them azure-identity would guess the VM metadata service,
# which off Azure fails late and says nothing about this app's settings.
IDENTITY_ENDPOINT_VARIABLES = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER")


class AwsFederationError(RuntimeError):
    """The managed identity -> AWS STS exchange failed; the message says what to fix."""


class NoManagedIdentityEndpoint(AwsFederationError):
    """OIDC mode, but the host announces no managed-identity endpoint."""


class ManagedIdentityTokenError(AwsFederationError):
    """The managed-identity endpoint gave no token."""


class AssumeRoleRefused(AwsFederationError):
    """AWS STS refused the token for the role."""


def require_identity_endpoint(environ: Mapping[str, str]) -> None:
    missing = [name for name in IDENTITY_ENDPOINT_VARIABLES if not environ.get(name)]
    if missing:
        raise NoManagedIdentityEndpoint(
            f"AWS_AUTH_MODE=oidc_managed_identity, but there is no managed-identity endpoint: "
            f"{' and '.join(missing)} not set. The Functions host sets them when the function app has a "
            "managed identity (az functionapp identity assign). To run locally, or anywhere without "
            "one, set AWS_AUTH_MODE=default_chain (keys, a profile, or an emulator's keys)."
        )


def identity_claims(token: str) -> dict[str, str]:
    """The iss, aud and sub claims of a JWT, unverified: what AWS's trust must match. Never the token."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    if not isinstance(claims, dict):
        return {}
    return {name: str(claims[name]) for name in ("iss", "aud", "sub") if name in claims}


class ManagedIdentityTokenLoader:
    """botocore's token loader: a fresh or MSAL-cached token for the configured audience.

    It remembers the last token's claims (not the token) so an STS refusal can name them.
    """

    def __init__(self, credential: ManagedIdentityCredential, settings: OidcSettings) -> None:
        self._credential = credential
        self._settings = settings
        self.last_claims: dict[str, str] = {}

    def __call__(self) -> str:
        try:
            token: str = self._credential.get_token(f"{self._settings.audience}/.default").token
        except (AzureError, ValueError) as error:
            raise ManagedIdentityTokenError(self._explain(error)) from error
        self.last_claims = identity_claims(token)
        return token

    def _explain(self, error: Exception) -> str:
        client_id = self._settings.managed_identity_client_id
        identity = f"user-assigned identity {client_id}" if client_id else "system-assigned identity"
        fix = (
            "Check that this identity is assigned to the function app and that "
            "AZURE_MANAGED_IDENTITY_CLIENT_ID is its client ID (not its principal ID)."
            if client_id
            else "Check that the function app's system-assigned identity is on "
            "(az functionapp identity show), or set AZURE_MANAGED_IDENTITY_CLIENT_ID for a user-assigned one."
        )
        return (
            f"The managed-identity endpoint gave no token for audience {self._settings.audience!r} "
            f"({identity}): {error}. {fix}"
        )


def refusal_message(error: ClientError, settings: OidcSettings, claims: Mapping[str, str]) -> str:
    """What STS said, which role and token it was about, and the likely cause."""
    details = error.response.get("Error", {})
    code, reason = details.get("Code", "?"), details.get("Message", "")
    provider = claims.get("iss", "<token issuer>").removeprefix("https://")
    aud, sub = claims.get("aud", "<token aud>"), claims.get("sub", "<token sub>")
    seen = ", ".join(f"{name}={value}" for name, value in claims.items()) or "claims unreadable"
    message = (
        f"AWS STS refused AssumeRoleWithWebIdentity into role {settings.role_arn} with the token for "
        f"audience {settings.audience!r} ({seen}): {code}: {reason}"
    )
    if code == "InvalidIdentityToken":
        return message + (
            f" Likely cause: the AWS account has no IAM OIDC provider for {provider}, or that "
            f"provider's audiences (client IDs) lack {aud}. A v1 token's issuer is "
            "sts.windows.net/<tenant>/, a v2 token's login.microsoftonline.com/<tenant>/v2.0."
        )
    if code == "AccessDenied":
        return message + (
            f" Likely cause: the role's trust policy does not admit this token: its Principal must be "
            f"the OIDC provider {provider} and its StringEquals conditions must be {provider}:aud = {aud} "
            f"and {provider}:sub = {sub} (the managed identity's principal ID); or the role does not exist."
        )
    return message


def role_name(role_arn: str) -> str:
    """``arn:aws:iam::<account>:role/<path/>name`` -> ``name``."""
    return role_arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


class NothingCached(dict[str, Any]):
    """A fetcher cache that keeps nothing: the credentials object holds the one copy and decides
    when to refresh (a second copy with its own expiry clock would only matter across processes)."""

    def __setitem__(self, key: str, value: Any) -> None:
        return None


class ManagedIdentityProvider(CredentialProvider):
    METHOD = "assume-role-with-web-identity"
    CANONICAL_NAME = "AzureManagedIdentity"

    def __init__(
        self, refresh: Callable[[], dict[str, Any]], clock: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__()
        self._refresh = refresh
        self._clock = clock

    def load(self) -> DeferredRefreshableCredentials:
        if self._clock is None:
            return DeferredRefreshableCredentials(refresh_using=self._refresh, method=self.METHOD)
        return DeferredRefreshableCredentials(
            refresh_using=self._refresh, method=self.METHOD, time_fetcher=self._clock
        )


def managed_identity_session(
    settings: OidcSettings, region: str, *, clock: Callable[[], datetime] | None = None
) -> boto3.Session:
    """A boto3 session whose only credential source is the managed identity, via STS in ``region``.

    ``clock`` replaces botocore's time source for the credentials' expiry checks (tests move time on).
    """
    require_identity_endpoint(os.environ)
    token_loader = ManagedIdentityTokenLoader(
        managed_identity_credential(settings.managed_identity_client_id), settings
    )
    botocore_session = botocore.session.Session()
    fetcher = AssumeRoleWithWebIdentityCredentialFetcher(
        client_creator=functools.partial(botocore_session.create_client, region_name=region),
        web_identity_token_loader=token_loader,
        role_arn=settings.role_arn,
        extra_args={
            "RoleSessionName": settings.session_name,
            "DurationSeconds": settings.session_duration_seconds,
        },
        cache=NothingCached(),
    )

    def refresh() -> dict[str, Any]:
        try:
            credentials = fetcher.fetch_credentials()
        except ClientError as error:
            raise AssumeRoleRefused(refusal_message(error, settings, token_loader.last_claims)) from error
        # The role's name, not its ARN: the logs need not spell out the AWS account on every refresh.
        logger.info(
            "AWS credentials for role %s (session %s) until %s",
            role_name(settings.role_arn),
            settings.session_name,
            credentials["expiry_time"],
        )
        return credentials

    # The only provider: no silent fallback to keys found in the environment or a profile.
    botocore_session.register_component(
        "credential_provider", CredentialResolver(providers=[ManagedIdentityProvider(refresh, clock)])
    )
    return boto3.Session(botocore_session=botocore_session, region_name=region)
