"""How a day of a conversation table becomes Parquet: the table's declared schema, the configured
compression and row-group size, split into files of about the target size. The platform's I/O manager then
commits the parts atomically under `<table>/year=YYYY/month=MM/day=DD/`."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engagement_assets.storage.parquet import ParquetParts
from engagement_assets.storage.tables import conform


@dataclass(frozen=True)
class ParquetOptions:
    compression: str
    row_group_size: int
    target_file_size_mb: float
    data_page_bytes: int = 1024 * 1024
    max_rows_per_file: int | None = None


def day_parts(frame: pd.DataFrame, schema: pa.Schema, asset: str, options: ParquetOptions) -> ParquetParts:
    """Local Parquet parts of one day of `asset`, each with exactly `schema` (SchemaDrift otherwise); always
    at least one file, so an empty day is stored as an empty file of the same columns and types."""
    table = conform(frame, schema, asset)
    parts = ParquetParts(folder=Path(tempfile.mkdtemp(prefix="conversations_")))
    for piece in _pieces(table, options.target_file_size_mb, options.max_rows_per_file):
        path = parts.next_path()
        pq.write_table(
            piece,
            path,
            compression=options.compression,
            row_group_size=options.row_group_size,
            data_page_size=options.data_page_bytes,
        )
        parts.added(path, piece.num_rows)
    return parts


def _pieces(table: pa.Table, target_mb: float, max_rows: int | None = None) -> list[pa.Table]:
    """Slices judged by their in-memory size (the Parquet files come out smaller), so no file grows far past
    the target, and of at most `max_rows` rows."""
    if table.num_rows == 0:
        return [table]
    bytes_per_row = max(table.nbytes / table.num_rows, 1.0)
    rows_per_piece = max(int(target_mb * 1024 * 1024 / bytes_per_row), 1)
    if max_rows:
        rows_per_piece = min(rows_per_piece, max_rows)
    return [table.slice(start, rows_per_piece) for start in range(0, table.num_rows, rows_per_piece)]
