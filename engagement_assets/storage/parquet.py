"""Parquet files produced locally by a stage, waiting to be committed to platform storage."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from engagement_assets.storage.layout import part_name


@dataclass
class ParquetParts:
    """Local Parquet files that together form one partition (stored as a folder of parts).

    A stage streams large outputs chunk by chunk into `folder`; the I/O manager then commits them as
    `<asset>/<partition>/part-NNNNN.parquet` and removes the local folder.
    """

    folder: Path
    files: list[Path] = field(default_factory=list)
    rows: int = 0

    def next_path(self) -> Path:
        """Where the next part goes, for writers that write the file themselves (then call `added`)."""
        return self.folder / part_name(len(self.files))

    def added(self, path: Path, rows: int) -> Path:
        self.files.append(path)
        self.rows += rows
        return path

    def named(self) -> dict[str, Path]:
        return {path.name: path for path in self.files}

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def write_parquet(table: pa.Table, path: Path) -> Path:
    pq.write_table(table, path, compression="zstd")
    return path


def read_parquet(store, keys: list[str], **dataset_options) -> pa.Table:
    """Read Parquet objects of a store in place (local or S3) as one table; `dataset_options` go to
    `Dataset.to_table` (columns, filter)."""
    filesystem, root = store.arrow()
    schema = dataset_options.pop("schema", None)
    dataset = ds.dataset(
        [f"{root}/{key}" for key in keys], filesystem=filesystem, format="parquet", schema=schema
    )
    return dataset.to_table(**dataset_options)
