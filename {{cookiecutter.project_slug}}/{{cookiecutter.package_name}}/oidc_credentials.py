"""AWS credentials with no stored secret: Azure managed identity token -> STS AssumeRoleWithWebIdentity.

botocore does the work: ``AssumeRoleWithWebIdentityCredentialFetcher`` calls STS
(unsigned) with the token our loader returns, and ``DeferredRefreshableCredentials``
refreshes before expiry. azure-identity's ``ManagedIdentityCredential`` caches the
token, so one credential per process is built and reused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .settings import APP_NAME, EnvReader, SettingsError

if TYPE_CHECKING:
    import boto3


@dataclass(frozen=True)
class OidcSettings:
    role_arn: str
    audience: str = {{ cookiecutter.token_audience | tojson }}
    managed_identity_client_id: str = "{{ cookiecutter.managed_identity_client_id }}"
    session_duration_seconds: int = 3600
    session_name: str = APP_NAME

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OidcSettings:
        reader = EnvReader(os.environ if environ is None else environ)
        defaults = cls(role_arn="{{ cookiecutter.aws_role_arn }}")
        role_arn = reader.text("AWS_OIDC_ROLE_ARN", defaults.role_arn)
        if not role_arn:
            raise SettingsError(
                "AWS_OIDC_ROLE_ARN is not set: the role to assume with the managed identity's token. "
                "Locally, set AWS_AUTH_MODE=default_chain to use the emulator's keys instead."
            )
        return cls(
            role_arn=role_arn,
            audience=reader.text("AWS_OIDC_AUDIENCE", defaults.audience),
            managed_identity_client_id=reader.text(
                "AZURE_MANAGED_IDENTITY_CLIENT_ID", defaults.managed_identity_client_id
            ),
            session_duration_seconds=reader.integer(
                "AWS_OIDC_SESSION_DURATION_SECONDS", defaults.session_duration_seconds, 900, 43_200
            ),
        )


def managed_identity_session(settings: OidcSettings | None = None) -> boto3.Session:
    """A boto3 session whose only credential source is the managed identity, via STS."""
    import boto3
    import botocore.session
    from azure.identity import ManagedIdentityCredential
    from botocore.credentials import (
        AssumeRoleWithWebIdentityCredentialFetcher,
        CredentialProvider,
        CredentialResolver,
        DeferredRefreshableCredentials,
    )

    settings = settings or OidcSettings.from_env()
    credential = ManagedIdentityCredential(client_id=settings.managed_identity_client_id or None)
    scope = f"{settings.audience}/.default"

    def load_token() -> str:
        return str(credential.get_token(scope).token)

    botocore_session = botocore.session.Session()
    fetcher = AssumeRoleWithWebIdentityCredentialFetcher(
        client_creator=botocore_session.create_client,
        web_identity_token_loader=load_token,
        role_arn=settings.role_arn,
        extra_args={
            "RoleSessionName": settings.session_name,
            "DurationSeconds": settings.session_duration_seconds,
        },
    )

    class ManagedIdentityProvider(CredentialProvider):
        METHOD = "assume-role-with-web-identity"
        CANONICAL_NAME = "AzureManagedIdentity"

        def load(self) -> DeferredRefreshableCredentials:
            return DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method=self.METHOD)

    # The only provider: no silent fallback to keys found in the environment.
    botocore_session.register_component(
        "credential_provider", CredentialResolver(providers=[ManagedIdentityProvider()])
    )
    return boto3.Session(botocore_session=botocore_session)
