"""A day's table as Parquet parts: the configured compression, row groups and target file size."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from engagement_assets.conversations.layout import ParquetOptions, day_parts
from engagement_assets.storage.keys import daily_hive_folder


def test_a_day_is_split_into_parts_of_about_the_target_size_with_the_configured_encoding():
    frame = pd.DataFrame(
        {"message_id": [f"m-{n:06d}" for n in range(20_000)], "text": ["hello there"] * 20_000}
    )
    parts = day_parts(
        frame, ParquetOptions(compression="gzip", row_group_size=1_000, target_file_size_mb=0.5)
    )
    try:
        assert len(parts.files) > 1 and parts.rows == 20_000
        tables = [pq.ParquetFile(path) for path in parts.files]
        assert sum(table.metadata.num_rows for table in tables) == 20_000
        assert all(path.stat().st_size < 0.5 * 1024 * 1024 for path in parts.files)
        metadata = tables[0].metadata
        assert metadata.row_group(0).column(0).compression == "GZIP"
        assert max(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)) == 1_000
    finally:
        parts.discard()


def test_an_empty_day_is_one_empty_file():
    parts = day_parts(pd.DataFrame({"conversation_id": pd.Series(dtype="string")}), ParquetOptions())
    try:
        assert len(parts.files) == 1 and pq.ParquetFile(parts.files[0]).metadata.num_rows == 0
    finally:
        parts.discard()


def test_day_keys_become_hive_folders():
    assert daily_hive_folder("messages", "2024-03-04") == "messages/year=2024/month=03/day=04"
