"""The all-learner table and its CSV export, read straight from the per-learner files."""

from __future__ import annotations

import csv

import pyarrow as pa

from engagement_assets.features.engagement_table import engagement_table, export_engagement_csv
from engagement_assets.features.phases import FEATURES_SCHEMA
from engagement_assets.storage import layout
from engagement_assets.storage.parquet import write_parquet
from engagement_assets.storage.store import LocalStore

HOSTILE = ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "plain", "a=b"]


def stored_features(tmp_path, texts: list[str]) -> LocalStore:
    store = LocalStore(tmp_path / "w")
    columns = {field.name: pa.nulls(len(texts), field.type) for field in FEATURES_SCHEMA}
    columns["UserId"] = pa.array(texts)
    columns["Phase"] = pa.array(texts)
    columns["avg_accuracy"] = pa.array([-5.0] * len(texts))  # a negative number stays a number
    write_parquet(pa.table(columns, schema=FEATURES_SCHEMA), tmp_path / "f.parquet")
    store.put_file(tmp_path / "f.parquet", layout.partition_file("phase_features", "u1"))
    return store


def test_export_text_a_spreadsheet_would_run_is_made_inert_and_numbers_are_untouched(tmp_path):
    store = stored_features(tmp_path, HOSTILE)
    export_engagement_csv(store)
    with open(store.path(layout.EXPORT_KEY), newline="") as exported:
        rows = list(csv.DictReader(exported))
    by_original = {text: row for text, row in zip(sorted(HOSTILE), rows, strict=True)}
    for text, row in by_original.items():
        expected = text if text in ("plain", "a=b") else "'" + text
        assert row["UserId"] == expected and row["Phase"] == expected
        assert float(row["avg_accuracy"]) == -5.0
    # The table itself keeps the data as it is.
    assert sorted(engagement_table(store)["UserId"]) == sorted(HOSTILE)
