"""Incremental collection: only what is new or updated since the last sync, merged per day, progress saved
per batch, an interrupted sync resumed without loss or duplicates. The page source here is a list in memory
with NocoDB's keyset semantics; test_conversation_assets.py runs the same through HTTP."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from engagement_assets.conversations.collect import load_state, read_raw_day, sync
from engagement_assets.storage.store import open_store

NOW = datetime(2024, 3, 10, 12, 0)
LATER = datetime(2024, 3, 10, 14, 0)


class Tables:
    """Rows by table, with the incremental query `collect.sync` sends: Id above the watermark or UpdatedAt
    after it, Id above the keyset cursor, in Id order, a page at a time."""

    def __init__(self, page_size: int = 3):
        self.rows = {"conversations": [], "messages": []}
        self.page_size = page_size
        self.queries = []

    def add(self, table: str, **fields) -> dict:
        row = {
            "Id": len(self.rows[table]) + 1,
            "CreatedAt": "2024-03-04 08:00:00+00:00",
            "UpdatedAt": None,
            **fields,
        }
        self.rows[table].append(row)
        return row

    def update(self, table: str, row_id: int, when: str, **fields) -> None:
        self.rows[table][row_id - 1].update(fields, UpdatedAt=when)

    def __call__(self, table, after_id, updated_after, start_after):
        self.queries.append((table, after_id, updated_after, start_after))

        def wanted(row):
            new = after_id is None or row["Id"] > after_id
            updated = (
                updated_after is not None and row["UpdatedAt"] and row["UpdatedAt"][:19] > updated_after[:19]
            )
            return (new or updated) and (start_after is None or row["Id"] > start_after)

        matching = [row for row in self.rows[table] if wanted(row)]
        for start in range(0, len(matching), self.page_size):
            yield [dict(row) for row in matching[start : start + self.page_size]]


def conversation(tables: Tables, number: int, day: int, hour: int = 10) -> None:
    cid = f"c{number}"
    tables.add(
        "conversations", conversation_id=cid, user_id="u1", started_at=f"2024-03-{day:02d} {hour}:00:00+00:00"
    )
    tables.add(
        "messages",
        message_id=f"{cid}-m1",
        conversation_id=cid,
        role="user",
        text="hi",
        sent_at=f"2024-03-{day:02d} {hour}:00:05+00:00",
    )


@pytest.fixture
def store(tmp_path):
    return open_store(tmp_path / "warehouse")


def stored_ids(store, table: str, day: int) -> list[str]:
    frame = read_raw_day(store, table, date(2024, 3, day))
    key = "conversation_id" if table == "conversations" else "message_id"
    return [] if frame is None else sorted(frame[key])


def test_a_second_sync_reads_only_new_and_updated_rows(store):
    tables = Tables()
    for number in range(5):
        conversation(tables, number, day=4 + number % 2)
    first = sync(tables, store, batch_size=2, now=NOW)
    assert first.rows == {"conversations": 5, "messages": 5} and first.days == {
        date(2024, 3, 4),
        date(2024, 3, 5),
    }
    assert stored_ids(store, "conversations", 4) == ["c0", "c2", "c4"]
    assert load_state(store)["conversations"]["last_id"] == 5 and not load_state(store)["in_progress"]

    conversation(tables, 5, day=6)
    tables.update("conversations", 1, "2024-03-10 13:00:00+00:00", status="closed")
    second = sync(tables, store, batch_size=2, now=LATER)
    assert second.rows == {"conversations": 2, "messages": 1}
    assert second.days == {date(2024, 3, 4), date(2024, 3, 6)}
    day4 = read_raw_day(store, "conversations", date(2024, 3, 4)).set_index("conversation_id")
    assert day4.loc["c0", "status"] == "closed" and len(day4) == 3  # updated in place, not added

    third = sync(tables, store, batch_size=2, now=LATER)
    assert third.rows == {"conversations": 0, "messages": 0} and third.days == set()


def test_an_interrupted_sync_resumes_from_its_last_batch_without_loss_or_duplicates(store):
    tables = Tables(page_size=2)
    for number in range(7):
        conversation(tables, number, day=4)
    stopped = sync(tables, store, batch_size=2, now=NOW, stop_after=2)
    assert stopped.batches == 2 and stored_ids(store, "conversations", 4) == ["c0", "c1", "c2", "c3"]
    assert load_state(store)["in_progress"]["conversations"]["cursor"] == 4

    resumed = sync(tables, store, batch_size=2, now=NOW)
    assert resumed.resumed and resumed.rows["conversations"] == 3  # only what the first run had not stored
    assert stored_ids(store, "conversations", 4) == [f"c{n}" for n in range(7)]
    assert stored_ids(store, "messages", 4) == [f"c{n}-m1" for n in range(7)]
    state = load_state(store)
    assert not state["in_progress"] and state["conversations"]["last_id"] == 7


def test_a_message_goes_to_the_day_its_conversation_started(store):
    tables = Tables()
    conversation(tables, 0, day=4, hour=23)
    tables.add(
        "messages",
        message_id="late",
        conversation_id="c0",
        role="user",
        text="still here",
        sent_at="2024-03-05 00:03:00+00:00",
    )
    sync(tables, store, batch_size=10, now=NOW)
    assert stored_ids(store, "messages", 4) == ["c0-m1", "late"] and stored_ids(store, "messages", 5) == []


def test_an_update_made_just_before_a_sync_started_is_read_again_next_time(store):
    tables = Tables()
    conversation(tables, 0, day=4)
    sync(tables, store, batch_size=10, now=NOW)
    assert load_state(store)["conversations"]["last_updated"] == "2024-03-10 11:55:00"
    # NocoDB's clock a little behind ours: the edit is stamped before our sync's start, yet not lost.
    tables.update("conversations", 1, "2024-03-10 11:58:00+00:00", status="closed")
    assert sync(tables, store, batch_size=10, now=LATER).rows["conversations"] == 1


def test_bad_rows_are_counted_and_kept_aside(store):
    tables = Tables()
    conversation(tables, 0, day=4)
    tables.add("conversations", conversation_id=None, started_at="2024-03-04 10:00:00+00:00")
    report = sync(tables, store, batch_size=10, now=NOW)
    assert report.rejected == {"conversations: missing conversation_id": 1}
    rejected = pd.read_parquet(store.uri("nocodb_sync/raw/rejected.parquet"))
    assert list(rejected["Id"]) == [2]


@pytest.mark.parametrize(
    "when", ["9999-12-31 23:59:59+00:00", "0001-01-01 00:00:00+00:00", "1800-06-01 10:00:00"]
)
def test_a_time_out_of_range_rejects_its_row_and_the_sync_completes(store, when):
    tables = Tables()
    conversation(tables, 0, day=4)
    tables.add("conversations", conversation_id="c-far", started_at=when)
    tables.add("messages", message_id="m-far", conversation_id="c0", sent_at=when)
    report = sync(tables, store, batch_size=10, now=NOW)
    assert report.rejected == {
        "conversations: started_at out of range": 1,
        "messages: sent_at out of range": 1,
    }
    assert "c0" in stored_ids(store, "conversations", 4)
    assert sync(tables, store, batch_size=10, now=NOW).rejected == {}  # committed: nothing to read again
