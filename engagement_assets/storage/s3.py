"""S3 clients configured from the standard AWS environment (`AWS_ENDPOINT_URL` included), and how to
tell a missing object or a passing fault from a real error.

boto3 reads `AWS_ENDPOINT_URL` itself; pyarrow's S3 filesystem is told explicitly, so both reach the same
server (a local S3 server in tests, a MinIO or S3-compatible store in some deployments).
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import boto3
import pyarrow.fs as pafs
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, IncompleteReadError

from engagement_assets.errors import NotARegularFile

# Several threads (audio downloads, concurrent partition writes) share one client.
_CLIENT_CONFIG = Config(max_pool_connections=64, retries={"max_attempts": 5, "mode": "standard"})
_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_TRANSIENT_CODES = {
    "500",
    "502",
    "503",
    "504",
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
}


def s3_client(config: Config | None = None):
    return boto3.session.Session().client(
        "s3", endpoint_url=_endpoint_url(), region_name=_region(), config=config or _CLIENT_CONFIG
    )


def arrow_s3_filesystem() -> pafs.S3FileSystem:
    endpoint = _endpoint_url()
    options: dict = {"region": _region() or "us-east-1"}
    if endpoint:
        parsed = urlparse(endpoint)
        options["endpoint_override"] = parsed.netloc or parsed.path
        options["scheme"] = parsed.scheme or "https"
    return pafs.S3FileSystem(**options)


def is_missing(err: BaseException) -> bool:
    return isinstance(err, ClientError) and _code(err) in _MISSING_CODES


def is_transient(err: BaseException) -> bool:
    """A fault worth retrying: a 5xx or throttling answer, a timeout, a dropped or cut-short connection."""
    if isinstance(err, ClientError):
        return _code(err) in _TRANSIENT_CODES or str(_status(err)).startswith("5")
    if isinstance(
        err, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, NotARegularFile)
    ):
        return False
    return isinstance(err, (ConnectionError, HTTPClientError, IncompleteReadError, TimeoutError, OSError))


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _status(err: ClientError) -> int | None:
    return err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
