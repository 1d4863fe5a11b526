"""Resources of the conversation group: the NocoDB client and the optional MongoDB operational store.
Tokens and URIs with passwords reach them as Dagster `EnvVar`s, so the UI, logs and run configs show only
the variables' names."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from engagement_assets.conversations.anonymise import Anonymiser, anonymiser
from engagement_assets.conversations.layout import ParquetOptions
from engagement_assets.conversations.nocodb import NocoDBClient
from engagement_assets.conversations.records import ID, UPDATED
from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.platform.io_manager import ParquetIOManager
from engagement_assets.platform.resources import StoreResource
from engagement_assets.settings import Settings

if TYPE_CHECKING:
    from engagement_assets.conversations.mongo_store import MongoStore


class NocoDBResource(dg.ConfigurableResource):
    """A NocoDB base: where it is, which tables hold conversations and messages, how to page through them."""

    # Every field comes from ConversationSettings (conversation_resources): the defaults live there only.
    base_url: str | None
    token: str | None = Field(description="Set from the NOCODB_API_TOKEN environment variable.")
    project_id: str | None
    conversation_table: str | None
    messages_table: str | None
    api_version: str
    auth_header: str
    page_size: int
    max_retries: int
    retry_delay: float
    id_field: str
    updated_field: str

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.token and self.project_id and self.conversation_table)

    def client(self) -> NocoDBClient:
        if not self.configured:
            raise dg.Failure(
                description="NocoDB is not configured: set NOCODB_BASE_URL, NOCODB_API_TOKEN, NOCODB_PROJECT_ID, "
                "NOCODB_CONVERSATION_TABLE and NOCODB_MESSAGES_TABLE"
            )
        return NocoDBClient(
            self.base_url,
            self.token,
            self.project_id,
            api_version=self.api_version,
            auth_header=self.auth_header,
            page_size=self.page_size,
            max_retries=self.max_retries,
            backoff_seconds=self.retry_delay,
        )

    def table_id(self, table: str) -> str:
        return {"conversations": self.conversation_table, "messages": self.messages_table}[table]

    def pages(self, client: NocoDBClient):
        """The page source `collect.sync` reads: a table's rows new or updated since a watermark."""

        def source(table: str, after_id, updated_after, start_after):
            pages = client.iter_pages(
                self.table_id(table),
                id_field=self.id_field,
                after_id=after_id,
                updated_field=self.updated_field,
                # The sync's state keeps UTC times as text; the client takes a datetime.
                updated_after=datetime.fromisoformat(updated_after) if updated_after else None,
                start_after=start_after,
            )
            return ([self._canonical(row) for row in page] for page in pages)

        return source

    def _canonical(self, row: dict) -> dict:
        """A row with the configured id and update-time fields under the names the group uses throughout
        (`Id`, `UpdatedAt`), so the cursor, the merge and the analytics follow the fields configured."""
        renamed = {ID: row.get(self.id_field), UPDATED: row.get(self.updated_field)}
        return {**row, **renamed}


class ConversationOptions(dg.ConfigurableResource):
    """How the group writes: Parquet compression, row-group and file size, rows per NocoDB sync batch."""

    compression: str
    row_group_size: int
    target_file_size_mb: float
    data_page_bytes: int
    max_rows_per_file: int | None
    batch_size: int
    categorizer: str
    anonymize: bool
    anonymize_secret: str | None = Field(description="Set from the ANONYMIZE_SECRET environment variable.")
    anonymize_patterns: str | None

    def parquet(self) -> ParquetOptions:
        return ParquetOptions(
            self.compression,
            self.row_group_size,
            self.target_file_size_mb,
            self.data_page_bytes,
            self.max_rows_per_file,
        )

    def anonymiser(self) -> Anonymiser | None:
        return anonymiser(self.anonymize, self.anonymize_secret, self.anonymize_patterns)


class MongoResource(dg.ConfigurableResource):
    """The operational store; with no MONGODB_URI the assets skip it and say so in their metadata."""

    uri: str | None = Field(description="Set from the MONGODB_URI environment variable.")
    database: str
    collections: dict[str, str] = Field(
        description="The configured name of each collection, by its design name."
    )

    @contextlib.contextmanager
    def store(self) -> Iterator[MongoStore | None]:
        if not self.uri:
            yield None
            return
        # pymongo is the optional `mongo` extra: only a configured store needs it.
        from engagement_assets.conversations.mongo_store import MongoStore

        with MongoStore.connect(self.uri, self.database, names=self.collections) as store:
            store.ensure_indexes()
            yield store


def conversation_resources(settings: ConversationSettings, platform: Settings) -> dict:
    """The group's own resources: its storage is `s3://S3_BUCKET/S3_PREFIX` when a bucket is set, else the
    platform's warehouse. The Gemini client (for CONVERSATION_CATEGORIZER=gemini) is the platform's
    `gemini` resource."""
    storage_url = settings.storage_url or platform.storage_url
    return {
        "conversations_io_manager": ParquetIOManager(storage_url=storage_url),
        "conversation_storage": StoreResource(url=storage_url),
        "conversation_options": ConversationOptions(
            compression=settings.parquet.compression,
            row_group_size=settings.parquet.row_group_size,
            target_file_size_mb=settings.parquet.target_file_size_mb,
            data_page_bytes=settings.parquet.data_page_bytes,
            max_rows_per_file=settings.parquet.max_rows_per_file,
            batch_size=settings.batch_size,
            categorizer=settings.categorizer,
            anonymize=settings.anonymize,
            anonymize_secret=dg.EnvVar("ANONYMIZE_SECRET") if settings.anonymize_secret_set else None,
            anonymize_patterns=settings.anonymize_patterns,
        ),
        "nocodb": NocoDBResource(
            base_url=settings.nocodb_base_url,
            token=dg.EnvVar("NOCODB_API_TOKEN") if settings.token_set else None,
            project_id=settings.nocodb_project_id,
            conversation_table=settings.conversation_table,
            messages_table=settings.messages_table,
            api_version=settings.nocodb_api_version,
            auth_header=settings.nocodb_auth_header,
            page_size=settings.nocodb_page_size,
            max_retries=settings.max_retries,
            retry_delay=settings.retry_delay,
            id_field=settings.nocodb_id_field,
            updated_field=settings.nocodb_updated_field,
        ),
        "mongo": MongoResource(
            uri=dg.EnvVar("MONGODB_URI") if settings.mongodb_uri_set else None,
            database=settings.mongodb_database,
            collections=settings.collections,
        ),
    }
