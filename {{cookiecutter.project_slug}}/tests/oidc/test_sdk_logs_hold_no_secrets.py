"""What the app logs once deployed cannot leak: at DEBUG, botocore would log the web identity token and the
credentials STS returns (request and response bodies), and Application Insights would keep them. The app
holds boto3's, botocore's and urllib3's loggers at INFO unless AWS_SDK_DEBUG_LOGS=true opts in.

Each test runs a real exchange (the local identity endpoint's token traded at the emulator's STS) and an SQS
call, with every logger at DEBUG, as a host.json set to Debug or a user's basicConfig would have it.
"""

from __future__ import annotations

import logging

import pytest

from {{ cookiecutter.package_name }}.engine.aws_session import SDK_LOGGERS, boto3_session, sqs_client
from {{ cookiecutter.package_name }}.engine.settings import Settings

from .conftest import OidcApp, StsExchange, record_sts_exchanges

pytestmark = pytest.mark.slow


def exchange_and_call(oidc_app: OidcApp, caplog: pytest.LogCaptureFixture) -> list[str]:
    """An OIDC exchange and an SQS call with all loggers at DEBUG; the secrets they handled."""
    caplog.set_level(logging.DEBUG)
    for name in SDK_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    settings = Settings.from_env()
    exchanges: list[StsExchange] = record_sts_exchanges(boto3_session(settings.auth_mode, settings.region))
    sqs_client(settings).get_queue_attributes(QueueUrl=oidc_app.app.queues.input_url)
    [exchange] = exchanges
    [token_request] = oidc_app.identity.requests
    assert token_request.token is not None
    return [
        token_request.token,
        exchange.credentials["SecretAccessKey"],
        exchange.credentials["SessionToken"],
    ]


def test_at_debug_the_logs_hold_no_token_secret_key_or_session_token(
    oidc_app: OidcApp, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = exchange_and_call(oidc_app, caplog)

    assert caplog.records, "nothing was logged: the test would prove nothing"
    leaked = [secret[:12] for secret in secrets if secret in caplog.text]
    assert leaked == []
    assert not [r for r in caplog.records if r.name.split(".")[0] in SDK_LOGGERS and r.levelno < logging.INFO]


def test_the_opt_in_setting_lets_the_sdk_log_at_debug_and_so_would_leak(
    oidc_app: OidcApp, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Shows that the test above can fail: the same run, opted in, logs the secrets.
    monkeypatch.setenv("AWS_SDK_DEBUG_LOGS", "true")

    secrets = exchange_and_call(oidc_app, caplog)

    assert all(secret in caplog.text for secret in secrets)
