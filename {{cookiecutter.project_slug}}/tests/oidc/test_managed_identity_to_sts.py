"""OIDC mode end to end with the real libraries over loopback: azure-identity asks a managed-identity
endpoint for a token, botocore trades it at STS (moto's) for credentials, and SQS calls are signed
with them. Nothing is mocked; what each test can and can't prove is said where it matters.

moto's STS trusts any token: that AWS checks the token against the OIDC provider and the role's
trust policy is not exercised here (the refusals AWS sends then are, from ``RefusingSts``).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.engine.aws_session import boto3_session, sqs_client
from {{ cookiecutter.package_name }}.engine.oidc_credentials import (
    AssumeRoleRefused,
    ManagedIdentityTokenError,
    NoManagedIdentityEndpoint,
    identity_claims,
    managed_identity_session,
)
from {{ cookiecutter.package_name }}.engine.settings import OidcSettings, Settings, SettingsError

from ..conftest import drain_all
from .conftest import (
    CONFIGURED_USER_ASSIGNED_PRINCIPAL_ID,
    DEFAULTS,
    KEY_VARIABLES,
    ROLE_NAME,
    USER_ASSIGNED_CLIENT_ID,
    USER_ASSIGNED_PRINCIPAL_ID,
    Clock,
    OidcApp,
    record_signing_keys,
    record_sts_exchanges,
)
from .identity_endpoint import (
    API_VERSION,
    FEDERATION_APP_ID,
    FEDERATION_AUDIENCE,
    SYSTEM_ASSIGNED_PRINCIPAL_ID,
    TENANT_ID,
)
from .refusing_sts import RefusingSts

pytestmark = pytest.mark.slow


def expected_claims(audience: str, principal_id: str) -> dict[str, str]:
    """What Entra ID puts in the token for ``audience``: the v2 form for the token-exchange audience,
    the v1 form for any other."""
    if audience == FEDERATION_AUDIENCE:
        issuer, aud = f"https://login.microsoftonline.com/{TENANT_ID}/v2.0", FEDERATION_APP_ID
    else:
        issuer, aud = f"https://sts.windows.net/{TENANT_ID}/", audience
    return {"iss": issuer, "aud": aud, "sub": principal_id}


def message_group(queue: str) -> dict[str, str]:
    return {"MessageGroupId": "oidc"} if queue.endswith(".fifo") else {}


def configured_principal_id() -> str:
    if DEFAULTS.managed_identity_client_id:
        return CONFIGURED_USER_ASSIGNED_PRINCIPAL_ID
    return SYSTEM_ASSIGNED_PRINCIPAL_ID


def test_the_app_sqs_client_runs_on_credentials_traded_for_the_managed_identity_token(
    oidc_app: OidcApp,
) -> None:
    settings = Settings.from_env()
    assert settings.auth_mode == "oidc_managed_identity"
    assert not any(os.environ.get(name) for name in KEY_VARIABLES)
    session = boto3_session(settings.auth_mode, settings.region)
    exchanges = record_sts_exchanges(session)
    client = sqs_client(settings)
    signed = record_signing_keys(client)
    queue = oidc_app.app.queues.output_url

    client.send_message(QueueUrl=queue, MessageBody="hello", **message_group(queue))  # type: ignore[arg-type]

    # The endpoint was asked, once, for the configured audience and identity, as App Service is.
    [token_request] = oidc_app.identity.requests
    assert (token_request.api_version, token_request.header_ok) == (API_VERSION, True)
    assert token_request.resource == DEFAULTS.audience
    assert token_request.client_id == (DEFAULTS.managed_identity_client_id or None)
    assert token_request.token is not None
    assert identity_claims(token_request.token) == expected_claims(
        DEFAULTS.audience, configured_principal_id()
    )
    # STS got exactly that token, for the configured role, session name and duration (as sent on the wire).
    [exchange] = exchanges
    assert exchange.region == settings.region
    assert exchange.sent["Action"] == "AssumeRoleWithWebIdentity"
    assert exchange.sent["WebIdentityToken"] == token_request.token
    assert exchange.sent["RoleArn"] == oidc_app.role_arn
    assert exchange.sent["RoleSessionName"] == DEFAULTS.session_name
    assert exchange.sent["DurationSeconds"] == str(DEFAULTS.session_duration_seconds)
    # The SQS call was signed with what STS issued, and nothing else (moto doesn't check signatures).
    issued = exchange.credentials
    assert signed == [(issued["AccessKeyId"], issued["SessionToken"])]
    assert issued["AccessKeyId"] != "test"
    # The emulator's STS knows those credentials as the assumed role and session.
    caller = session.client("sts").get_caller_identity()
    assert caller["Arn"] == (
        f"arn:aws:sts::{oidc_app.account}:assumed-role/{ROLE_NAME}/{DEFAULTS.session_name}"
    )
    assert drain_all(oidc_app.app.client, queue) == ["hello"]


def test_credentials_refresh_before_they_expire_and_reuse_the_cached_token(
    oidc_app: OidcApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="{{ cookiecutter.package_name }}.engine.oidc_credentials")
    settings = Settings.from_env()
    clock = Clock()
    session = managed_identity_session(OidcSettings.from_env(), settings.region, clock=clock)
    exchanges = record_sts_exchanges(session)
    client = session.client("sqs")
    signed = record_signing_keys(client)
    queue = oidc_app.app.queues.input_url
    lifetime = DEFAULTS.session_duration_seconds

    client.get_queue_attributes(QueueUrl=queue)
    # botocore refreshes from 15 minutes before expiry: 16 minutes before, the first set still serves.
    clock.advance(seconds=lifetime - 16 * 60)
    client.get_queue_attributes(QueueUrl=queue)
    assert len(exchanges) == 1
    # 14 minutes before expiry: a new set, while the old one is still valid.
    clock.advance(minutes=2)
    first_expiry = exchanges[0].credentials["Expiration"]
    assert first_expiry > clock()
    client.get_queue_attributes(QueueUrl=queue)

    assert len(exchanges) == 2
    first, second = (exchange.credentials["AccessKeyId"] for exchange in exchanges)
    assert first != second
    assert [key for key, _ in signed] == [first, first, second]
    # Both exchanges used the one token the endpoint issued: MSAL served the second from its cache.
    assert oidc_app.identity.hits == 1
    assert exchanges[1].sent["WebIdentityToken"] == exchanges[0].sent["WebIdentityToken"]
    # Each refresh is logged with the role's name; its ARN (the AWS account) stays out of the logs.
    logged = [record.getMessage() for record in caplog.records]
    refreshes = [line for line in logged if line.startswith("AWS credentials for role")]
    assert len(refreshes) == 2
    assert all(f"role {ROLE_NAME} (session" in line for line in refreshes), refreshes
    assert not [line for line in refreshes if oidc_app.role_arn in line or oidc_app.account in line]


def test_one_credential_per_process_so_sessions_share_the_cached_token(oidc_app: OidcApp) -> None:
    regions = ["us-east-1", "eu-west-1"]
    for region in regions:
        session = managed_identity_session(OidcSettings.from_env(), region)
        exchanges = record_sts_exchanges(session)
        session.client("sts").get_caller_identity()
        # STS is called in the session's region (its regional endpoint, unless AWS_ENDPOINT_URL* is set).
        assert [exchange.region for exchange in exchanges] == [region]
    assert oidc_app.identity.hits == 1


def test_a_user_assigned_client_id_reaches_the_endpoint(
    oidc_app: OidcApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_MANAGED_IDENTITY_CLIENT_ID", USER_ASSIGNED_CLIENT_ID)
    settings = Settings.from_env()
    client = sqs_client(settings)
    queue = oidc_app.app.queues.output_url

    body = "from a user-assigned identity"
    client.send_message(QueueUrl=queue, MessageBody=body, **message_group(queue))  # type: ignore[arg-type]

    [token_request] = oidc_app.identity.requests
    assert token_request.client_id == USER_ASSIGNED_CLIENT_ID
    assert token_request.token is not None
    assert identity_claims(token_request.token)["sub"] == USER_ASSIGNED_PRINCIPAL_ID
    assert drain_all(oidc_app.app.client, queue) == [body]


def test_another_audience_gets_a_v1_token_for_it(oidc_app: OidcApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_OIDC_AUDIENCE", "api://aws-federation-test")
    sqs_client(Settings.from_env()).get_queue_attributes(QueueUrl=oidc_app.app.queues.input_url)

    [token_request] = oidc_app.identity.requests
    assert token_request.resource == "api://aws-federation-test"
    assert token_request.token is not None
    assert identity_claims(token_request.token) == expected_claims(
        "api://aws-federation-test", configured_principal_id()
    )


def test_without_an_identity_endpoint_the_error_says_how_to_switch_mode(
    oidc_app: OidcApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDENTITY_ENDPOINT")
    monkeypatch.delenv("IDENTITY_HEADER")
    with pytest.raises(NoManagedIdentityEndpoint, match="set AWS_AUTH_MODE=default_chain") as refused:
        sqs_client(Settings.from_env())
    assert "IDENTITY_ENDPOINT and IDENTITY_HEADER not set" in str(refused.value)
    assert oidc_app.identity.hits == 0


def test_an_identity_the_endpoint_does_not_know_is_named_in_the_error(
    oidc_app: OidcApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = "99999999-8888-4777-8666-555555555555"
    monkeypatch.setenv("AZURE_MANAGED_IDENTITY_CLIENT_ID", unknown)
    client = sqs_client(Settings.from_env())
    with pytest.raises(ManagedIdentityTokenError) as refused:
        client.get_queue_attributes(QueueUrl=oidc_app.app.queues.input_url)
    message = str(refused.value)
    assert f"user-assigned identity {unknown}" in message
    assert "No User Assigned or Delegated Managed Identity found" in message
    assert "its client ID (not its principal ID)" in message
    assert DEFAULTS.audience in message


@pytest.mark.parametrize(
    ("code", "status", "reason", "cause"),
    [
        (
            "InvalidIdentityToken",
            400,
            f"No OpenIDConnect provider found in your account for https://sts.windows.net/{TENANT_ID}/",
            "no IAM OIDC provider for",
        ),
        ("AccessDenied", 403, "Not authorized to perform sts:AssumeRoleWithWebIdentity", "trust policy"),
    ],
)
def test_sts_refusals_name_the_role_the_audience_and_the_likely_cause(
    oidc_app: OidcApp, monkeypatch: pytest.MonkeyPatch, *, code: str, status: int, reason: str, cause: str
) -> None:
    with RefusingSts(code, reason, status) as sts:
        # botocore's own per-service override: STS goes here, SQS still to the emulator.
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.url)
        client = sqs_client(Settings.from_env())
        with pytest.raises(AssumeRoleRefused) as refused:
            client.get_queue_attributes(QueueUrl=oidc_app.app.queues.input_url)

    message = str(refused.value)
    token = oidc_app.identity.requests[0].token
    assert token is not None
    claims = identity_claims(token)
    provider = claims["iss"].removeprefix("https://")
    for words in (oidc_app.role_arn, repr(DEFAULTS.audience), f"{code}: {reason}", cause, provider):
        assert words in message
    for name in ("iss", "aud", "sub"):
        assert f"{name}={claims[name]}" in message
    if code == "AccessDenied":
        assert f"{provider}:aud = {claims['aud']}" in message
        assert f"{provider}:sub = {claims['sub']}" in message
    assert token not in message
    # What STS received, as it received it.
    [received] = sts.requests
    assert received["Action"] == "AssumeRoleWithWebIdentity"
    assert (received["RoleArn"], received["WebIdentityToken"]) == (oidc_app.role_arn, token)

{%- if not cookiecutter.aws_role_arn %}


def test_oidc_mode_without_a_role_says_which_setting_and_how_to_switch_mode() -> None:
    with pytest.raises(SettingsError, match="AWS_OIDC_ROLE_ARN is not set") as refused:
        OidcSettings.from_env({})
    assert "set AWS_AUTH_MODE=default_chain" in str(refused.value)
{%- endif %}


def test_a_malformed_role_arn_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="AWS_OIDC_ROLE_ARN='arn:aws:s3:::bucket' is not an IAM role ARN"):
        OidcSettings.from_env({"AWS_OIDC_ROLE_ARN": "arn:aws:s3:::bucket"})


@pytest.mark.parametrize("seconds", ["900", "43201"])
def test_session_durations_botocore_cannot_keep_are_refused(seconds: str) -> None:
    with pytest.raises(SettingsError, match="AWS_OIDC_SESSION_DURATION_SECONDS"):
        OidcSettings.from_env(
            {
                "AWS_OIDC_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
                "AWS_OIDC_SESSION_DURATION_SECONDS": seconds,
            }
        )


def test_no_token_or_credential_reaches_a_log_a_file_or_a_setting(
    oidc_app: OidcApp, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.time()
    # Everything the app and azure-identity/MSAL log, at DEBUG; botocore at INFO (its DEBUG output
    # prints request and response bodies, credentials included: never turn it on in production).
    for name in ("{{ cookiecutter.package_name }}", "azure", "msal", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.INFO, logger="botocore")
    settings = Settings.from_env()
    exchanges = record_sts_exchanges(boto3_session(settings.auth_mode, settings.region))
    sqs_client(settings).get_queue_attributes(QueueUrl=oidc_app.app.queues.input_url)

    token = oidc_app.identity.requests[0].token
    [exchange] = exchanges
    secrets = [token, exchange.credentials["SecretAccessKey"], exchange.credentials["SessionToken"]]
    assert all(secrets)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "AWS credentials for role" in logged
    assert [secret for secret in secrets if secret in logged] == []
    assert [secret for secret in secrets if secret in os.environ.values()] == []
    assert written_since(started, secrets) == []


def written_since(started: float, secrets: list[str | None]) -> list[str]:
    """Files changed since ``started`` that hold a secret, where a credential cache would be: the
    project, and the AWS and Azure tools' folders in the home directory."""
    project = Path(__file__).resolve().parents[2]
    roots = [project, *(Path.home() / name for name in (".aws", ".azure", ".IdentityService"))]
    skip = {".venv", ".git", "node_modules", ".mypy_cache", ".ruff_cache"}
    found: list[str] = []
    for root in roots:
        for directory, subdirectories, files in os.walk(root):
            subdirectories[:] = [d for d in subdirectories if d not in skip]
            for name in files:
                path = Path(directory, name)
                try:
                    if path.stat().st_mtime < started or path.stat().st_size > 1_000_000:
                        continue
                    text = path.read_text(encoding="utf-8", errors="ignore")
                except OSError:
                    continue
                found.extend(str(path) for secret in secrets if secret and secret in text)
    return found
