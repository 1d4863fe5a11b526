"""Stage 2 extraction: one pass for many learners, dedupe across drops, time order, and refreshes that read
only the parts written since a learner's responses were stored, with the same result as a full rebuild."""

from __future__ import annotations

import os
import random
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engagement_assets import learner_key
from engagement_assets.ingestion.events import RESPONSE_SCHEMA
from engagement_assets.responses import extract
from engagement_assets.responses.extract import USER_RESPONSES, deduplicate, extract_learner_responses
from engagement_assets.storage import layout
from engagement_assets.storage.parquet import write_parquet
from engagement_assets.storage.store import LocalStore, S3Store, open_store


def part(rows: list[tuple[str, str, int, int]]) -> pa.Table:
    """rows of (event_mid, user_id, event_ets ms, created_at ms)."""
    columns = {name: [None] * len(rows) for name in RESPONSE_SCHEMA.names}
    columns["event_mid"] = [row[0] for row in rows]
    columns["user_id"] = [row[1] for row in rows]
    columns["event_ets"] = [row[2] for row in rows]
    columns["created_at"] = [row[3] for row in rows]
    columns["accuracy_percentage"] = [50.0] * len(rows)
    return pa.table(columns, schema=RESPONSE_SCHEMA)


def store_with(tmp_path, drops: dict[str, list], store=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = store or LocalStore(tmp_path / "w")
    for drop, rows in drops.items():
        store.put_file(
            write_parquet(part(rows), tmp_path / "p.parquet"), f"cleaned_telemetry/{drop}/part-00000.parquet"
        )
    return store


def store_responses(store, extraction, scratch) -> None:
    """What the I/O manager does with stage 2's tables: one file per learner, its notes kept."""
    for learner, table in extraction.responses.items():
        pq.write_table(table, scratch / "r.parquet")
        store.put_file(scratch / "r.parquet", layout.partition_file(USER_RESPONSES, learner))


def rows_of(extraction) -> dict[str, list[dict]]:
    return {learner: table.to_pylist() for learner, table in extraction.responses.items()}


def rebuilt_from_scratch(tmp_path, store, learners):
    """The same cleaned parts with no stored responses: what a full rebuild gives."""
    fresh = LocalStore(tmp_path / "fresh")
    for stored in layout.partition_parts(store, "cleaned_telemetry"):
        fresh.put_bytes(store.read_bytes(stored.key), stored.key)
    return extract_learner_responses(fresh, learners)


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


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "w")
    return open_store(f"s3://{request.getfixturevalue('bucket')}/w")


def test_a_refresh_reads_only_the_drops_written_since_and_equals_a_full_rebuild(tmp_path, store):
    store_with(tmp_path, {"d1.json": [("a", "u1", 1, 300), ("b", "u2", 1, 100)]}, store)
    store_responses(store, extract_learner_responses(store, ["u1", "u2"]), tmp_path)
    # S3 lists write times to the second: a part written in the same second counts as possibly read
    # (the learner would be rebuilt, see the next test), so the next drop lands a second later.
    time.sleep(1.05 if isinstance(store, S3Store) else 0)
    store_with(tmp_path, {"d2.json": [("a", "u1", 1, 200), ("c", "u1", 1, 400)]}, store)

    refreshed = extract_learner_responses(store, ["u1", "u2"])
    assert (refreshed.parts_read, refreshed.learners_rebuilt) == (1, 0)
    # u1's and u2's stored rows carry over; d2 holds u1's two rows, one a copy of "a" (an earlier one).
    assert (refreshed.rows_carried, refreshed.rows_read, refreshed.duplicates_across_drops) == (2, 2, 1)
    assert rows_of(refreshed) == rows_of(rebuilt_from_scratch(tmp_path, store, ["u1", "u2"]))
    assert [row["event_mid"] for row in refreshed.responses["u1"].to_pylist()] == ["a", "c"]

    store_responses(store, refreshed, tmp_path)
    unchanged = extract_learner_responses(store, ["u1", "u2"])
    assert (unchanged.parts_read, unchanged.rows_read, unchanged.rows_carried) == (0, 0, 3)
    assert rows_of(unchanged) == rows_of(refreshed)


@pytest.mark.parametrize(
    "change",
    ["cleaned again", "removed", "unreadable", "other rules", "not stored", "written in the same instant"],
)
def test_a_learner_whose_history_changed_is_rebuilt_from_every_drop(tmp_path, monkeypatch, change):
    store = store_with(tmp_path, {"d1.json": [("a", "u1", 1, 300)], "d2.json": [("b", "u1", 1, 100)]})
    store_responses(store, extract_learner_responses(store, ["u1", "u2"]), tmp_path)
    stored = layout.partition_file(USER_RESPONSES, "u1")
    if change == "cleaned again":
        store_with(tmp_path, {"d1.json": [("z", "u1", 1, 50)]}, store)
    elif change == "removed":
        store.delete("cleaned_telemetry/d1.json/part-00000.parquet")
    elif change == "unreadable":
        store.put_bytes(b"PAR1 not really", stored)
    elif change == "other rules":
        monkeypatch.setattr(extract, "RULES_VERSION", extract.RULES_VERSION + 1)
    elif change == "not stored":
        store.delete(stored)
    else:
        # A part whose write time equals the newest one read may or may not have been seen: never trusted.
        newest = max(part.modified for part in layout.partition_parts(store, "cleaned_telemetry"))
        store_with(tmp_path, {"d3.json": [("c", "u2", 1, 10)]}, store)
        os.utime(store.path("cleaned_telemetry/d3.json/part-00000.parquet"), (newest, newest))

    refreshed = extract_learner_responses(store, ["u1", "u2"])
    assert refreshed.rows_carried == 0
    assert refreshed.learners_rebuilt == (1 if change in ("unreadable", "not stored") else 2)
    assert refreshed.parts_read == len(layout.partition_parts(store, "cleaned_telemetry"))
    assert rows_of(refreshed) == rows_of(rebuilt_from_scratch(tmp_path, store, ["u1", "u2"]))


def test_refreshing_drop_by_drop_gives_what_one_full_read_gives(tmp_path):
    generator = random.Random(7)
    store = LocalStore(tmp_path / "w")
    learners = [f"u{n}" for n in range(6)]
    for day in range(6):
        rows = [
            (f"m{generator.randrange(40)}", generator.choice(learners), 1, generator.randrange(1000))
            for _ in range(25)
        ]
        store_with(tmp_path, {f"d{day}.json": list({row[0]: row for row in rows}.values())}, store)
        batch = generator.sample(learners, 3)
        store_responses(store, extract_learner_responses(store, batch), tmp_path)
    final = extract_learner_responses(store, learners)
    assert final.rows_carried > 0
    assert rows_of(final) == rows_of(rebuilt_from_scratch(tmp_path, store, learners))


def test_copies_that_tie_on_time_keep_the_same_one_whatever_the_read_order():
    copies = part([("a", "u1", 1, 100), ("a", "u1", 1, 100)]).set_column(
        RESPONSE_SCHEMA.get_field_index("response_text"), "response_text", pa.array(["late", "early"])
    )
    forward, backward = deduplicate(copies), deduplicate(copies.take([1, 0]))
    assert forward.to_pylist() == backward.to_pylist()
    assert forward.column("response_text").to_pylist() == ["early"]
