"""Conforming a stage's output to its asset's declared schema: typed empties, safe conversions, drift refused
with the asset and column named."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from engagement_assets.storage.tables import SchemaDrift, check_schema, conform

SCHEMA = pa.schema(
    [("id", pa.string()), ("score", pa.float64()), ("at", pa.timestamp("ms")), ("day", pa.date32())]
)


def test_an_empty_frame_gets_every_declared_type():
    empty = pd.DataFrame({"id": [], "score": [], "at": [], "day": []})
    assert conform(empty, SCHEMA, "a").schema == SCHEMA


def test_columns_with_no_values_and_lossless_conversions_are_accepted():
    frame = pd.DataFrame(
        {
            "id": [None, None],
            "score": [1, 2],
            "at": pd.to_datetime(["2025-06-01 10:00:00.123", None]),
            "day": pd.to_datetime(["2025-06-01", "2025-06-02"]),
        }
    )
    table = conform(frame, SCHEMA, "a")
    assert table.schema == SCHEMA and table.column("score").to_pylist() == [1.0, 2.0]
    assert conform(table, SCHEMA, "a").equals(table)


@pytest.mark.parametrize(
    ("column", "values", "why"),
    [
        ("score", ["high", "low"], "column 'score' does not fit double"),
        ("at", pd.to_datetime(["2025-06-01 10:00:00.123456", None]), "column 'at' does not fit"),
        ("day", pd.to_datetime(["2025-06-01 10:30", None]), "column 'day' holds times of day"),
    ],
)
def test_values_that_would_change_are_refused(column, values, why):
    frame = pd.DataFrame({"id": ["x", "y"], "score": [1.0, 2.0], "at": [None, None], "day": [None, None]})
    frame[column] = values
    with pytest.raises(SchemaDrift, match=f"^asset: {why}"):
        conform(frame, SCHEMA, "asset")


def test_missing_extra_and_mistyped_columns_are_named():
    with pytest.raises(SchemaDrift, match=r"missing \['day'\], unexpected \['extra'\]"):
        conform(pd.DataFrame({"id": [], "score": [], "at": [], "extra": []}), SCHEMA, "asset")
    written = pa.schema(
        [("id", pa.string()), ("score", pa.string()), ("at", pa.timestamp("ms")), ("day", pa.date32())]
    )
    with pytest.raises(SchemaDrift, match="asset: column 'score' is string, declared double"):
        check_schema(written, SCHEMA, "asset")
