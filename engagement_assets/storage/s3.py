"""S3 clients configured from the standard AWS environment (`AWS_ENDPOINT_URL` included).

boto3 reads `AWS_ENDPOINT_URL` itself; pyarrow's S3 filesystem is told explicitly, so both reach the same
server (a local S3 server in tests, a MinIO or S3-compatible store in some deployments).
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import boto3
import pyarrow.fs as pafs
from botocore.config import Config

# Several threads (audio downloads, concurrent partition writes) share one client.
_CLIENT_CONFIG = Config(max_pool_connections=64, retries={"max_attempts": 5, "mode": "standard"})


def s3_client():
    return boto3.session.Session().client(
        "s3", endpoint_url=_endpoint_url(), region_name=_region(), config=_CLIENT_CONFIG
    )


def arrow_s3_filesystem() -> pafs.S3FileSystem:
    endpoint = _endpoint_url()
    options: dict = {"region": _region() or "us-east-1"}
    if endpoint:
        parsed = urlparse(endpoint)
        options["endpoint_override"] = parsed.netloc or parsed.path
        options["scheme"] = parsed.scheme or "https"
    return pafs.S3FileSystem(**options)


def _endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
