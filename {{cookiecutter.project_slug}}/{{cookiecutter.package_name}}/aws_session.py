"""The one place the app gets AWS clients from: one boto3 session per process and auth mode.

boto3 and botocore are imported inside the functions, not at module import, so
the Functions host indexes ``function_app`` without paying for them (cold start).
Endpoint overrides (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_SQS``) are read by
botocore itself.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from .settings import Settings

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sqs import SQSClient


@functools.cache
def boto3_session(auth_mode: str) -> boto3.Session:
    """The process-wide session for ``auth_mode``; its credentials refresh themselves."""
    import boto3

{%- if cookiecutter.aws_auth == "oidc_managed_identity" %}

    if auth_mode == "oidc_managed_identity":
        from .oidc_credentials import managed_identity_session

        return managed_identity_session()
{%- endif %}

    return boto3.Session()


@functools.cache
def sqs_client(settings: Settings) -> SQSClient:
    """A thread-safe SQS client, shared by every function invocation in this process."""
    from botocore.config import Config

    config = Config(
        region_name=settings.region,
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        # A drain holds up to max_concurrency handlers that each may call SQS (heartbeats, deletes).
        max_pool_connections=max(10, settings.max_concurrency + 4),
        # Long polls wait up to 20 s; the read timeout must outlast them.
        read_timeout=settings.wait_time_seconds + 10,
        connect_timeout=5,
    )
    return boto3_session(settings.auth_mode).client("sqs", config=config)


@functools.cache
def cloudwatch_client(settings: Settings) -> CloudWatchClient:
    """For queue metrics SQS itself does not give (the age of the oldest message)."""
    from botocore.config import Config

    config = Config(
        region_name=settings.region,
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        connect_timeout=5,
    )
    return boto3_session(settings.auth_mode).client("cloudwatch", config=config)


def reset_clients() -> None:
    """Forget cached sessions and clients (tests, or after rotating settings)."""
    sqs_client.cache_clear()
    cloudwatch_client.cache_clear()
    boto3_session.cache_clear()
