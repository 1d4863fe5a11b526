"""The conversation group's configuration, by the original design's environment variables (plus the few a
real NocoDB needs: which API version, how to send the token, the id and update-time fields)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from engagement_assets.conversations.layout import ParquetOptions

COMPRESSIONS = ("snappy", "zstd", "gzip", "brotli", "lz4", "none")


@dataclass(frozen=True)
class ConversationSettings:
    nocodb_base_url: str | None = None
    nocodb_project_id: str | None = None
    conversation_table: str | None = None
    messages_table: str | None = None
    nocodb_api_version: str = "v1"
    nocodb_auth_header: str = "xc-token"
    nocodb_page_size: int = 100
    nocodb_id_field: str = "Id"
    nocodb_updated_field: str = "UpdatedAt"
    token_set: bool = False
    mongodb_uri_set: bool = False
    mongodb_database: str = "conversation_analytics"
    s3_bucket: str | None = None
    s3_prefix: str = "conversations"
    parquet: ParquetOptions = field(default_factory=ParquetOptions)
    batch_size: int = 500
    max_retries: int = 3
    start_date: str = "2024-01-01"
    categorizer: str = "rules"

    @property
    def storage_url(self) -> str | None:
        """`s3://S3_BUCKET/S3_PREFIX` when a bucket is set; else the platform's warehouse is used."""
        return f"s3://{self.s3_bucket}/{self.s3_prefix.strip('/')}" if self.s3_bucket else None

    @property
    def nocodb_configured(self) -> bool:
        return bool(
            self.nocodb_base_url and self.nocodb_project_id and self.conversation_table and self.token_set
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConversationSettings:
        env = os.environ if environ is None else environ

        def get(name: str, default: str | None = None) -> str | None:
            return env.get(name, "").strip() or default

        settings = cls(
            nocodb_base_url=get("NOCODB_BASE_URL"),
            nocodb_project_id=get("NOCODB_PROJECT_ID"),
            conversation_table=get("NOCODB_CONVERSATION_TABLE"),
            messages_table=get("NOCODB_MESSAGES_TABLE"),
            nocodb_api_version=get("NOCODB_API_VERSION", "v1"),
            nocodb_auth_header=get("NOCODB_AUTH_HEADER", "xc-token"),
            nocodb_page_size=_positive(env, "NOCODB_PAGE_SIZE", 100),
            nocodb_id_field=get("NOCODB_ID_FIELD", "Id"),
            nocodb_updated_field=get("NOCODB_UPDATED_FIELD", "UpdatedAt"),
            token_set=bool(get("NOCODB_API_TOKEN")),
            mongodb_uri_set=bool(get("MONGODB_URI")),
            mongodb_database=get("MONGODB_DATABASE", "conversation_analytics"),
            s3_bucket=get("S3_BUCKET"),
            s3_prefix=get("S3_PREFIX", "conversations"),
            parquet=ParquetOptions(
                compression=get("PARQUET_COMPRESSION", "snappy").lower(),
                row_group_size=_positive(env, "PARQUET_ROW_GROUP_SIZE", 100_000),
                target_file_size_mb=float(_positive(env, "PARQUET_TARGET_FILE_SIZE_MB", 128)),
            ),
            batch_size=_positive(env, "BATCH_SIZE", 500),
            max_retries=_positive(env, "MAX_RETRIES", 3),
            start_date=get("CONVERSATIONS_START_DATE", "2024-01-01"),
            categorizer=get("CONVERSATION_CATEGORIZER", "rules"),
        )
        settings.check()
        return settings

    def check(self) -> None:
        _choice("NOCODB_API_VERSION", self.nocodb_api_version, ("v1", "v2"))
        _choice("NOCODB_AUTH_HEADER", self.nocodb_auth_header, ("xc-token", "bearer"))
        _choice("PARQUET_COMPRESSION", self.parquet.compression, COMPRESSIONS)
        _choice("CONVERSATION_CATEGORIZER", self.categorizer, ("rules", "gemini"))
        if self.nocodb_page_size > 1000:
            raise ValueError(
                f"NOCODB_PAGE_SIZE={self.nocodb_page_size}: NocoDB returns at most 1000 rows a page"
            )


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"{name}={text!r} must be a positive whole number")
    return int(text)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of: {', '.join(allowed)}")
