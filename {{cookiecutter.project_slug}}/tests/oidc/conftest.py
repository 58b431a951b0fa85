"""The app in OIDC mode: a managed-identity endpoint on 127.0.0.1, STS from the SQS emulator, no AWS keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest

from {{ cookiecutter.package_name }}.engine.aws_session import reset_clients
from {{ cookiecutter.package_name }}.engine.settings import OidcSettings

from ..conftest import AppUnderTest
from .identity_endpoint import ManagedIdentityEndpoint

DEFAULTS = OidcSettings(role_arn="")
ROLE_NAME = "{{ cookiecutter.project_slug }}-sqs"[:64]
# A user-assigned identity the endpoint knows besides the one the template answers name (if any).
USER_ASSIGNED_CLIENT_ID = "5d6e7f80-91a2-4b3c-8d4e-5f60718293a4"
USER_ASSIGNED_PRINCIPAL_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
CONFIGURED_USER_ASSIGNED_PRINCIPAL_ID = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e"
EMULATOR_KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@pytest.fixture(scope="session")
def emulator_account(sqs_endpoint: str) -> str:
    """The emulator's default account (moto 123456789012, LocalStack 000000000000): a role there sees
    the queues the tests create with the emulator's keys."""
    sts = boto3.client("sts", endpoint_url=sqs_endpoint, region_name="us-east-1", **EMULATOR_KEYS)
    return sts.get_caller_identity()["Account"]


@pytest.fixture
def identity_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[ManagedIdentityEndpoint]:
    user_assigned = {USER_ASSIGNED_CLIENT_ID: USER_ASSIGNED_PRINCIPAL_ID}
    if DEFAULTS.managed_identity_client_id:
        user_assigned[DEFAULTS.managed_identity_client_id] = CONFIGURED_USER_ASSIGNED_PRINCIPAL_ID
    with ManagedIdentityEndpoint(user_assigned=user_assigned) as endpoint:
        for name, value in endpoint.environment().items():
            monkeypatch.setenv(name, value)
        yield endpoint


@dataclass(frozen=True)
class OidcApp:
    app: AppUnderTest
    identity: ManagedIdentityEndpoint
    role_arn: str
    account: str


@pytest.fixture
def oidc_app(
    app_env: AppUnderTest,
    identity_endpoint: ManagedIdentityEndpoint,
    emulator_account: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[OidcApp]:
    """Fresh queues (made with the emulator's keys), then the app switched to OIDC mode with no keys:
    AWS credentials can only come from STS, in exchange for the identity endpoint's token."""
    for name in (*KEY_VARIABLES, "AWS_OIDC_AUDIENCE", "AZURE_MANAGED_IDENTITY_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    role_arn = f"arn:aws:iam::{emulator_account}:role/{ROLE_NAME}"
    monkeypatch.setenv("AWS_AUTH_MODE", "oidc_managed_identity")
    monkeypatch.setenv("AWS_OIDC_ROLE_ARN", role_arn)
    reset_clients()
    yield OidcApp(app_env, identity_endpoint, role_arn, emulator_account)
    reset_clients()


@dataclass
class StsExchange:
    """One AssumeRoleWithWebIdentity: the STS client's region, the form sent, the credentials got."""

    region: str
    sent: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, Any] = field(default_factory=dict)


def record_sts_exchanges(session: boto3.Session) -> list[StsExchange]:
    """Every AssumeRoleWithWebIdentity of clients this session creates from now on (botocore events)."""
    exchanges: list[StsExchange] = []
    operation = "sts.AssumeRoleWithWebIdentity"

    def called(context: dict[str, Any], **_: Any) -> None:
        exchanges.append(StsExchange(region=context["client_region"]))

    def sent(request: Any, **_: Any) -> None:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        exchanges[-1].sent = {key: values[0] for key, values in parse_qs(body).items()}

    def answered(parsed: dict[str, Any], **_: Any) -> None:
        exchanges[-1].credentials = parsed.get("Credentials", {})

    session.events.register(f"before-parameter-build.{operation}", called)
    session.events.register(f"before-send.{operation}", sent)
    session.events.register(f"after-call.{operation}", answered)
    return exchanges


def record_signing_keys(client: Any) -> list[tuple[str, str]]:
    """(access key ID, session token) that signed each request of this client."""
    signed: list[tuple[str, str]] = []

    def sent(request: Any, **_: Any) -> None:
        # "AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/sqs/aws4_request, ..."
        authorization = as_text(request.headers.get("Authorization", b""))
        key_id = authorization.partition("Credential=")[2].partition("/")[0]
        signed.append((key_id, as_text(request.headers.get("X-Amz-Security-Token", b""))))

    client.meta.events.register("before-send", sent)
    return signed


def as_text(header: str | bytes) -> str:
    return header.decode() if isinstance(header, bytes) else header


class Clock:
    """botocore's time source for the credentials' expiry checks, moved on by the test."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)
