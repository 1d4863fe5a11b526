"""A day's table as Parquet parts: the table's declared schema, the configured compression, row groups and
target file size."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engagement_assets.conversations.analytics import MESSAGES_SCHEMA
from engagement_assets.conversations.layout import ParquetOptions, day_parts
from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.storage import layout
from engagement_assets.storage.tables import SchemaDrift

SCHEMA = pa.schema([("message_id", pa.string()), ("text", pa.string())])


def test_a_day_is_split_into_parts_of_about_the_target_size_with_the_configured_encoding():
    frame = pd.DataFrame(
        {"message_id": [f"m-{n:06d}" for n in range(20_000)], "text": ["hello there"] * 20_000}
    )
    parts = day_parts(
        frame,
        SCHEMA,
        "messages",
        ParquetOptions(compression="gzip", row_group_size=1_000, target_file_size_mb=0.5),
    )
    try:
        assert len(parts.files) > 1 and parts.rows == 20_000
        tables = [pq.ParquetFile(path) for path in parts.files]
        assert sum(table.metadata.num_rows for table in tables) == 20_000
        assert all(table.schema_arrow == SCHEMA for table in tables)
        assert all(path.stat().st_size < 0.5 * 1024 * 1024 for path in parts.files)
        metadata = tables[0].metadata
        assert metadata.row_group(0).column(0).compression == "GZIP"
        assert max(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)) == 1_000
    finally:
        parts.discard()


def test_an_empty_day_is_one_empty_file_with_every_declared_column_typed():
    # All-null columns of no rows: what pandas infers for an empty day, and what used to be stored as `null`.
    empty = pd.DataFrame({name: pd.Series(dtype="object") for name in MESSAGES_SCHEMA.names})
    parts = day_parts(empty, MESSAGES_SCHEMA, "messages", ConversationSettings().parquet)
    try:
        (path,) = parts.files
        assert pq.ParquetFile(path).metadata.num_rows == 0
        assert pq.read_schema(path) == MESSAGES_SCHEMA
    finally:
        parts.discard()


@pytest.mark.parametrize(
    ("frame", "named"),
    [
        (pd.DataFrame({"message_id": ["m-1"], "text": [3.5]}), "'text'"),
        (pd.DataFrame({"message_id": ["m-1"], "text": ["hi"], "extra": [1]}), "extra"),
        (pd.DataFrame({"message_id": ["m-1"]}), "text"),
    ],
)
def test_a_frame_that_drifts_from_its_schema_is_never_written(frame, named):
    with pytest.raises(SchemaDrift, match="messages") as refused:
        day_parts(frame, SCHEMA, "messages", ConversationSettings().parquet)
    assert named in str(refused.value)


def test_day_keys_become_hive_folders():
    assert layout.day_folder("messages", "2024-03-04") == "messages/year=2024/month=03/day=04/"


def test_the_records_cap_splits_a_day_and_the_page_size_reaches_the_writer(monkeypatch):
    frame = pd.DataFrame(
        {"message_id": [f"m-{n:06d}" for n in range(5_000)], "text": ["hello there"] * 5_000}
    )
    capped = day_parts(frame, SCHEMA, "messages", ParquetOptions("none", 1_000, 128, max_rows_per_file=1_200))
    try:
        assert [pq.ParquetFile(path).metadata.num_rows for path in capped.files] == [1_200] * 4 + [200]
    finally:
        capped.discard()
    # pyarrow reports no page count, so the writer's arguments are what can be seen.
    seen = []
    real_write = pq.write_table
    monkeypatch.setattr(pq, "write_table", lambda *a, **kw: seen.append(kw) or real_write(*a, **kw))
    day_parts(frame, SCHEMA, "messages", ParquetOptions("none", 5_000, 128, data_page_bytes=4096)).discard()
    assert seen and all(kw["data_page_size"] == 4096 for kw in seen)


def test_the_designs_variables_are_all_recognised():
    settings = ConversationSettings.from_env(
        {
            "PARQUET_PAGE_SIZE": "65536",
            "PARQUET_MAX_RECORDS_PER_FILE": "10000",
            "RETRY_DELAY": "2.5",
            "MONGODB_CONVERSATIONS_COLLECTION": "convs",
            "S3_BUCKET": "bucket",
            "S3_ENABLED": "false",
        }
    )
    assert settings.parquet.data_page_bytes == 65536 and settings.parquet.max_rows_per_file == 10_000
    assert settings.retry_delay == 2.5 and settings.collections["conversation_analytics"] == "convs"
    assert settings.storage_url is None  # S3 off: the platform's storage
    assert ConversationSettings.from_env({"S3_BUCKET": "bucket"}).storage_url == "s3://bucket/conversations"
    with pytest.raises(ValueError, match="PARQUET_STORAGE_ENABLED=false is not supported"):
        ConversationSettings.from_env({"PARQUET_STORAGE_ENABLED": "false"})
    with pytest.raises(ValueError, match="S3_ENABLED='maybe' must be true or false"):
        ConversationSettings.from_env({"S3_ENABLED": "maybe"})
