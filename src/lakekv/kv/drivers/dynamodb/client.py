"""Requests and retries: the boto3 client lakekv builds, AWS error codes and the one retry
policy (see *Retries* in the store's module docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
import botocore.config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ProxyConnectionError,
    ReadTimeoutError,
)

from lakekv.errors import ConfigurationError
from lakekv.kv.url import StoreURL
from lakekv.retry import Attempts, RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from lakekv.kv.drivers.dynamodb.store import DynamoDBSettings

THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "LimitExceededException",
    }
)
SERVER_CODES = frozenset(
    {
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
CONFIG_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "AccessDeniedException",
        "IncompleteSignatureException",
    }
)
REJECTED_CODES = frozenset({"ValidationException", "SerializationException"})
NOT_SENT = (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)
"""Connection failures that happen before the request reached the server."""
AMBIGUOUS = (ReadTimeoutError, ConnectionClosedError)
"""Failures after the request was sent: it may or may not have been applied."""
CONFIG_ERRORS = (NoCredentialsError, PartialCredentialsError, NoRegionError, ProfileNotFound)
_BACKOFF_BASE = 0.025
_BACKOFF_CAP = 2.0


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ``ClientError`` (``""`` when absent)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def retry_policy(max_attempts: int = 10, budget: float = 20.0) -> RetryPolicy:
    """The driver's retry policy: full jitter, intervals from 25 ms doubling up to 2 s,
    ``max_attempts`` attempts (the first included) within ``budget`` seconds."""
    return RetryPolicy(
        max_tries=max_attempts,
        initial_interval=_BACKOFF_BASE * 2,
        max_interval=_BACKOFF_CAP,
        jitter=1.0,
        budget=budget,
    )


class RequestAttempts(Attempts):
    """The retry state of one logical request, plus what went wrong."""

    __slots__ = ("ambiguous", "reconnect")

    def __init__(self, policy: RetryPolicy, *, reconnect: bool = True) -> None:
        super().__init__(policy)
        self.ambiguous = False
        self.reconnect = reconnect
        """Whether connection failures are retried (not when opening: fail fast there)."""


CREDENTIALS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
"""Credential names ``open_store(..., credentials=...)`` may give this driver."""


def make_client(url: StoreURL, settings: DynamoDBSettings) -> DynamoDBClient:
    """A boto3 client with lakekv's timeouts and boto3's own retries turned off."""
    config = botocore.config.Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=settings.max_connections,
    )
    try:
        # Credentials handed to this store are used by this client only: two stores with
        # different credentials never share them through the process environment.
        creds = settings.credentials
        session = boto3.session.Session(
            aws_access_key_id=creds.get("aws_access_key_id"),
            aws_secret_access_key=creds.get("aws_secret_access_key"),
            aws_session_token=creds.get("aws_session_token"),
            profile_name=settings.profile,
        )
        return session.client(
            "dynamodb",
            region_name=settings.region,
            endpoint_url=settings.endpoint,
            config=config,
        )
    except CONFIG_ERRORS as exc:
        raise ConfigurationError(f"{url}: AWS configuration: {exc}") from exc
    except BotoCoreError as exc:
        raise ConfigurationError(f"{url}: cannot create a DynamoDB client: {exc}") from exc
