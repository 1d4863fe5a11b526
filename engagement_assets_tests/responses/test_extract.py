"""Stage 2 extraction: one pass for many learners, dedupe across drops, time order."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from engagement_assets import learner_key
from engagement_assets.ingestion.events import RESPONSE_SCHEMA
from engagement_assets.responses.extract import deduplicate, extract_learner_responses
from engagement_assets.storage.parquet import write_parquet
from engagement_assets.storage.store import LocalStore


def part(rows: list[tuple[str, str, int, int]]) -> pa.Table:
    """rows of (event_mid, user_id, event_ets ms, created_at ms)."""
    columns = {name: [None] * len(rows) for name in RESPONSE_SCHEMA.names}
    columns["event_mid"] = [row[0] for row in rows]
    columns["user_id"] = [row[1] for row in rows]
    columns["event_ets"] = [row[2] for row in rows]
    columns["created_at"] = [row[3] for row in rows]
    columns["accuracy_percentage"] = [50.0] * len(rows)
    return pa.table(columns, schema=RESPONSE_SCHEMA)


def store_with(tmp_path, drops: dict[str, list]) -> LocalStore:
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = LocalStore(tmp_path / "w")
    for drop, rows in drops.items():
        store.put_file(
            write_parquet(part(rows), tmp_path / "p.parquet"), f"cleaned_telemetry/{drop}/part-00000.parquet"
        )
    return store


def test_learners_are_gathered_from_every_drop_deduplicated_in_time_order(tmp_path):
    store = store_with(
        tmp_path,
        {
            "d1.json": [("a", "u1", 1, 300), ("b", "u2", 1, 100), ("c", "u1", 1, 50)],
            "d2.jsonl": [("a", "u1", 1, 200), ("d", "u1", 1, 400), ("e", "u3", 1, 1)],
        },
    )
    extraction = extract_learner_responses(store, ["u1", "u2", "nobody"])
    frames = {learner: table.to_pandas() for learner, table in extraction.responses.items()}
    assert list(frames) == ["u1", "u2", "nobody"]
    # Every row read is a learner's row or a copy another drop holds: 5 rows of u1/u2, one copy of "a".
    assert (extraction.rows_read, extraction.duplicates_across_drops) == (5, 1)
    u1 = frames["u1"]
    assert u1["event_mid"].tolist() == ["c", "a", "d"]
    assert u1["created_at"].tolist() == pd.to_datetime([50, 200, 400], unit="ms").tolist()
    assert frames["u2"]["event_mid"].tolist() == ["b"]
    assert frames["nobody"].empty and list(frames["nobody"].columns) == RESPONSE_SCHEMA.names


def test_no_cleaned_data_yet_gives_empty_frames(tmp_path):
    tables = extract_learner_responses(LocalStore(tmp_path / "empty"), ["u1"]).responses
    assert tables["u1"].num_rows == 0 and tables["u1"].schema.equals(RESPONSE_SCHEMA)


def test_deduplicate_keeps_the_earliest_and_puts_missing_times_last():
    table = pa.table(
        {
            "user_id": ["u", "u", "u", "u"],
            "event_mid": ["a", "a", "b", "c"],
            "event_ets": [1, 1, 1, 1],
            "created_at": pa.array([20, 10, None, 5], type=pa.timestamp("ms")),
        }
    )
    kept = deduplicate(table).to_pandas()
    assert sorted(kept["event_mid"]) == ["a", "b", "c"]
    assert kept.set_index("event_mid").loc["a", "created_at"] == pd.Timestamp(10, unit="ms")


def test_one_drop_needs_no_dedupe_but_several_do(tmp_path):
    one = store_with(tmp_path / "one", {"d1.json": [("a", "u1", 1, 300), ("b", "u1", 1, 100)]})
    assert extract_learner_responses(one, ["u1"]).responses["u1"].column("event_mid").to_pylist() == [
        "b",
        "a",
    ]
    two = store_with(tmp_path / "two", {"d1.json": [("a", "u1", 1, 300)], "d2.json": [("a", "u1", 1, 200)]})
    (only,) = extract_learner_responses(two, ["u1"]).responses["u1"].to_pylist()
    assert only["created_at"] == pd.Timestamp(200, unit="ms")


def test_learners_are_asked_for_by_key_and_found_by_id(tmp_path):
    buddy = "1234567/7654321"
    store = store_with(tmp_path, {"d1.json": [("a", buddy, 1, 300), ("b", "u1", 1, 100)]})
    extraction = extract_learner_responses(store, [learner_key(buddy)])
    assert extraction.responses[learner_key(buddy)].column("user_id").to_pylist() == [buddy]
