"""The conversation group's configuration, by the original design's environment variables (plus the few a
real NocoDB needs: which API version, how to send the token, the id and update-time fields). Declared once,
as in `engagement_assets/settings.py`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from engagement_assets.conversations.layout import ParquetOptions
from engagement_assets.settings import (
    check_choices,
    env_setting,
    flag,
    from_environment,
    is_set,
    positive_float,
    positive_int,
)

COMPRESSIONS = ("snappy", "zstd", "gzip", "brotli", "lz4", "none")
CATEGORIZERS = ("rules", "gemini")


def day(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a date (YYYY-MM-DD)") from None
    return value


@dataclass(frozen=True)
class ConversationSettings:
    nocodb_base_url: str | None = env_setting(
        "NOCODB_BASE_URL", None, "e.g. `https://nocodb.example.org`", shown_default="unset (group idle)"
    )
    token_set: bool = env_setting(
        "NOCODB_API_TOKEN",
        False,
        "an API token, sent as `xc-token` or `Authorization: Bearer`; reaches the resource as an `EnvVar`, "
        "never shown or stored",
        parse=is_set,
    )
    nocodb_auth_header: str = env_setting(
        "NOCODB_AUTH_HEADER", "xc-token", "`xc-token` or `bearer`", choices=("xc-token", "bearer")
    )
    nocodb_api_version: str = env_setting(
        "NOCODB_API_VERSION",
        "v1",
        "`v1` (`/api/v1/db/data/v1/{project}/{table}`, the design's) or `v2` (`/api/v2/tables/{table}/records`)",
        choices=("v1", "v2"),
    )
    nocodb_project_id: str | None = env_setting(
        "NOCODB_PROJECT_ID", None, "the base id (`p…`): NocoDB 0.301 answers 404 to titles"
    )
    conversation_table: str | None = env_setting(
        "NOCODB_CONVERSATION_TABLE", None, "the conversations table id (`m…`)"
    )
    messages_table: str | None = env_setting("NOCODB_MESSAGES_TABLE", None, "the messages table id (`m…`)")
    nocodb_page_size: int = env_setting(
        "NOCODB_PAGE_SIZE", 100, "rows per request (NocoDB caps at 1,000)", parse=positive_int
    )
    nocodb_id_field: str = env_setting("NOCODB_ID_FIELD", "Id", "the id field the incremental cursor follows")
    nocodb_updated_field: str = env_setting(
        "NOCODB_UPDATED_FIELD", "UpdatedAt", "the update-time field the incremental cursor follows"
    )
    max_retries: int = env_setting(
        "MAX_RETRIES",
        3,
        "retries on 429 (honouring `Retry-After`), 5xx, timeouts, with backoff and jitter; 401/404/422 fail at "
        "once with NocoDB's reason (never the token)",
        parse=positive_int,
    )
    batch_size: int = env_setting(
        "BATCH_SIZE", 500, "rows per sync batch (the unit of progress)", parse=positive_int
    )
    s3_bucket: str | None = env_setting(
        "S3_BUCKET", None, "the group's storage: `s3://S3_BUCKET/S3_PREFIX`; unset = `ENGAGEMENT_STORAGE_URL`"
    )
    s3_prefix: str = env_setting("S3_PREFIX", "conversations", "the prefix within `S3_BUCKET`")
    parquet_compression: str = env_setting(
        "PARQUET_COMPRESSION",
        "snappy",
        "how the daily files are compressed",
        parse=str.lower,
        choices=COMPRESSIONS,
    )
    parquet_row_group_size: int = env_setting(
        "PARQUET_ROW_GROUP_SIZE", 100_000, "rows per row group of the daily files", parse=positive_int
    )
    parquet_target_file_size_mb: int = env_setting(
        "PARQUET_TARGET_FILE_SIZE_MB", 128, "the size a daily file is split at", parse=positive_int
    )
    conversations_collection: str = env_setting(
        "MONGODB_CONVERSATIONS_COLLECTION",
        "conversation_analytics",
        "MongoDB collection of the conversations table",
    )
    messages_collection: str = env_setting(
        "MONGODB_MESSAGES_COLLECTION", "conversation_messages", "… of the messages table"
    )
    translations_collection: str = env_setting(
        "MONGODB_TRANSLATIONS_COLLECTION", "conversation_translations", "… of the translations table"
    )
    categories_collection: str = env_setting(
        "MONGODB_CATEGORIES_COLLECTION", "conversation_categories", "… of the categories table"
    )
    user_analytics_collection: str = env_setting(
        "MONGODB_USER_ANALYTICS_COLLECTION", "user_analytics", "… of the per-learner analytics"
    )
    reports_collection: str = env_setting(
        "MONGODB_REPORTS_COLLECTION", "analytics_reports", "… of the daily, weekly and monthly reports"
    )
    model_reports_collection: str = env_setting(
        "MONGODB_MODEL_REPORTS_COLLECTION", "model_reports", "… of the assistant models' reports"
    )
    parquet_page_size: int = env_setting(
        "PARQUET_PAGE_SIZE", 1024 * 1024, "bytes per Parquet data page of the daily files", parse=positive_int
    )
    parquet_max_records_per_file: int | None = env_setting(
        "PARQUET_MAX_RECORDS_PER_FILE",
        None,
        "rows at most per daily file (besides the size target)",
        parse=positive_int,
    )
    retry_delay: float = env_setting(
        "RETRY_DELAY",
        0.5,
        "seconds of the first NocoDB retry's backoff (doubling, with jitter, up to 30 s)",
        parse=positive_float,
    )
    s3_enabled: bool = env_setting(
        "S3_ENABLED", True, "`false`: ignore `S3_BUCKET` and store in `ENGAGEMENT_STORAGE_URL`", parse=flag
    )
    parquet_storage_enabled: bool = env_setting(
        "PARQUET_STORAGE_ENABLED",
        True,
        "only `true`: every table is an asset stored as Parquet by the I/O manager, which the API, MongoDB and "
        "the analytics read (MongoDB is the optional extra copy)",
        parse=flag,
    )
    mongodb_uri_set: bool = env_setting(
        "MONGODB_URI",
        False,
        "the optional operational store; reaches the resource as an `EnvVar`",
        parse=is_set,
    )
    mongodb_database: str = env_setting("MONGODB_DATABASE", "conversation_analytics", "the MongoDB database")
    start_date: str = env_setting(
        "CONVERSATIONS_START_DATE", "2024-01-01", "the first daily partition", parse=day
    )
    categorizer: str = env_setting(
        "CONVERSATION_CATEGORIZER",
        "rules",
        "`rules` or `gemini` (the platform's Gemini settings and pool)",
        choices=CATEGORIZERS,
    )

    anonymize: bool = env_setting(
        "ANONYMIZE",
        False,
        "`true`: learner ids stored as a keyed hash, e-mail addresses, phone numbers and `ANONYMIZE_PATTERNS` "
        "scrubbed from message text, before anything is stored",
        parse=flag,
    )
    anonymize_secret_set: bool = env_setting(
        "ANONYMIZE_SECRET",
        False,
        "the key of the learner-id hash (HMAC-SHA256; keep it to keep the hashes stable); reaches the resource "
        "as an `EnvVar`, never shown or stored",
        parse=is_set,
    )
    anonymize_patterns: str | None = env_setting(
        "ANONYMIZE_PATTERNS", None, "more regular expressions to scrub, separated by `;;`"
    )

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.parquet_storage_enabled:
            raise ValueError(
                "PARQUET_STORAGE_ENABLED=false is not supported: the tables are stored as Parquet"
            )
        if self.anonymize and not self.anonymize_secret_set:
            raise ValueError("ANONYMIZE=true needs ANONYMIZE_SECRET (the key of the learner-id hash)")
        if self.nocodb_page_size > 1000:
            raise ValueError(
                f"NOCODB_PAGE_SIZE={self.nocodb_page_size}: NocoDB returns at most 1000 rows a page"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConversationSettings:
        return from_environment(cls, environ)

    @property
    def parquet(self) -> ParquetOptions:
        return ParquetOptions(
            self.parquet_compression,
            self.parquet_row_group_size,
            float(self.parquet_target_file_size_mb),
            self.parquet_page_size,
            self.parquet_max_records_per_file,
        )

    @property
    def storage_url(self) -> str | None:
        """`s3://S3_BUCKET/S3_PREFIX` when a bucket is set; else the platform's warehouse is used."""
        if not (self.s3_bucket and self.s3_enabled):
            return None
        return f"s3://{self.s3_bucket}/{self.s3_prefix.strip('/')}"

    @property
    def collections(self) -> dict[str, str]:
        """The MongoDB collection names, by the design's names."""
        return {
            "conversation_analytics": self.conversations_collection,
            "conversation_messages": self.messages_collection,
            "conversation_translations": self.translations_collection,
            "conversation_categories": self.categories_collection,
            "user_analytics": self.user_analytics_collection,
            "analytics_reports": self.reports_collection,
            "model_reports": self.model_reports_collection,
        }

    @property
    def nocodb_configured(self) -> bool:
        return bool(
            self.nocodb_base_url and self.nocodb_project_id and self.conversation_table and self.token_set
        )
