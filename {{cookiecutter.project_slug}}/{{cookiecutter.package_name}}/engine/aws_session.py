"""The one place the app gets AWS clients from: one boto3 session per process and auth mode.

boto3 and botocore are imported inside the functions, not at module import, so
the Functions host indexes ``function_app`` without paying for them (cold start).
Endpoint overrides (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_SQS``,
``AWS_ENDPOINT_URL_STS``) are read by botocore itself.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import TYPE_CHECKING, Any

from .consumer.sizing import sqs_connections_needed
from .managed_identity import forget_credentials
from .settings import (
    AuthMode,
{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}
    OidcSettings,
{%- endif %}
    Settings,
    sdk_debug_logs,
)

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sqs import SQSClient


# boto3 sessions are not thread-safe: the first invocations of several functions may create
# clients at once, so sessions and clients are made under one lock (and then cached).
_creating = threading.RLock()

# At DEBUG, botocore logs every request and response body (the web identity token, the credentials STS
# returns) and urllib3 every URL; Application Insights keeps whatever is logged.
SDK_LOGGERS = ("boto3", "botocore", "s3transfer", "urllib3")


def hold_sdk_loggers_above_debug() -> None:
    """Keep the AWS SDK's loggers at INFO or above, whatever level the host or host.json sets,
    unless AWS_SDK_DEBUG_LOGS=true opts in. Runs before any AWS client exists."""
    if sdk_debug_logs():
        return
    floor = max(logging.INFO, logging.getLogger().getEffectiveLevel())
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < floor:
            logger.setLevel(floor)


@functools.cache
def boto3_session(auth_mode: AuthMode, region: str) -> boto3.Session:
    """The process-wide session for ``auth_mode``; its credentials refresh themselves."""
    hold_sdk_loggers_above_debug()
    import boto3

{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}

    if auth_mode == "oidc_managed_identity":
        from .oidc_credentials import managed_identity_session

        return managed_identity_session(OidcSettings.from_env(), region)
{%- endif %}

    return boto3.Session(region_name=region)


@functools.cache
def sqs_client(settings: Settings) -> SQSClient:
    """A thread-safe SQS client, shared by every function invocation in this process."""
    config = _client_config(
        settings,
        # Receives and ack calls in flight (at their bounds) and handlers that send share these.
        max_pool_connections=sqs_connections_needed(settings.max_concurrency),
        # Long polls wait up to 20 s; the read timeout must outlast them.
        read_timeout=settings.wait_time_seconds + 10,
    )
    with _creating:
        return boto3_session(settings.auth_mode, settings.region).client("sqs", config=config)


@functools.cache
def s3_client(settings: Settings) -> Any:
    """For payloads past the queue's size limit (large_payloads.py). Against an emulator's endpoint,
    path-style addresses: a bucket's own host name (bucket.localhost) resolves nowhere there."""
    import os

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = _client_config(
        settings,
        max_pool_connections=sqs_connections_needed(settings.max_concurrency),
        **({"s3": {"addressing_style": "path"}} if endpoint else {}),
    )
    with _creating:
        return boto3_session(settings.auth_mode, settings.region).client("s3", config=config)


@functools.cache
def cloudwatch_client(settings: Settings) -> CloudWatchClient:
    """For queue metrics SQS itself does not give (the age of the oldest message)."""
    config = _client_config(settings)
    with _creating:
        return boto3_session(settings.auth_mode, settings.region).client("cloudwatch", config=config)


def _client_config(settings: Settings, **options: Any) -> Config:
    from botocore.config import Config

    return Config(
        region_name=settings.region,
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        connect_timeout=5,
        **options,
    )


def reset_clients() -> None:
    """Forget cached sessions and clients (tests, or after rotating settings)."""
    sqs_client.cache_clear()
    s3_client.cache_clear()
    cloudwatch_client.cache_clear()
    boto3_session.cache_clear()
    forget_credentials()
