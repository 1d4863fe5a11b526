"""All learners' phase features as one table, read with DuckDB straight from the per-learner Parquet files
(never by loading thousands of partitions into memory), and its CSV export with the original columns."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from engagement_assets.features.phases import FEATURE_COLUMNS, FEATURES_SCHEMA
from engagement_assets.storage import layout
from engagement_assets.storage.layout import EXPORT_KEY
from engagement_assets.storage.store import Store

FEATURES = "phase_features"
_ORDER = "UserId, start_time, SessionId"


def engagement_table(store: Store) -> pd.DataFrame:
    """Every learner's phase features, in the export's column order, sorted by learner and time."""
    with _features_view(store) as con:
        return con.sql(f"SELECT {_columns()} FROM features ORDER BY {_ORDER}").df()


def export_engagement_csv(store: Store) -> str:
    """Write `<storage>/exports/phase_level_engagement_full.csv` atomically; returns its URI."""
    with tempfile.TemporaryDirectory(prefix="engagement-export-") as scratch, _features_view(store) as con:
        local = Path(scratch) / "export.csv"
        con.sql(f"SELECT {_export_columns()} FROM features ORDER BY {_ORDER}").write_csv(
            str(local), header=True
        )
        store.put_file(local, EXPORT_KEY)
    return store.uri(EXPORT_KEY)


class _features_view:
    """A DuckDB connection with a `features` view over the per-learner files (empty when there are none)."""

    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        self.con = duckdb.connect(config={"memory_limit": "512MB"})
        keys = layout.partition_file_keys(self.store, FEATURES)
        if keys:
            filesystem, root = self.store.arrow()
            paths = [f"{root}/{key}" for key in keys]
            # The declared schema, so files written before it was enforced (null-typed when empty) still read.
            dataset = ds.dataset(paths, filesystem=filesystem, format="parquet", schema=FEATURES_SCHEMA)
            self.con.register("features", dataset)
        else:
            self.con.register("features", FEATURES_SCHEMA.empty_table())
        return self.con

    def __exit__(self, *exc) -> None:
        self.con.close()


def _columns() -> str:
    return ", ".join(f'"{column}"' for column in FEATURE_COLUMNS)


def _export_columns() -> str:
    """The export's columns, with text a spreadsheet would run as a formula (starting with =, +, -, @, a tab
    or a carriage return) made inert by a leading apostrophe, as OWASP advises; numbers are untouched."""
    return ", ".join(
        _inert(column) if pa.types.is_string(FEATURES_SCHEMA.field(column).type) else f'"{column}"'
        for column in FEATURE_COLUMNS
    )


# Starts with a character a spreadsheet takes as the beginning of a formula.
_FORMULA_START = r"^[=+\-@\t\r]"


def _inert(column: str) -> str:
    quoted = f'"{column}"'
    return (
        f"CASE WHEN regexp_matches({quoted}, '{_FORMULA_START}') THEN chr(39) || {quoted} "
        f"ELSE {quoted} END AS {quoted}"
    )
