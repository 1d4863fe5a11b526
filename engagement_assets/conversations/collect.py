"""Incremental collection from NocoDB: conversations, then messages, that are new (Id above the last one
processed) or updated (UpdatedAt after the last update time processed), in batches. Each batch is merged
into per-day raw files (latest version of each row wins) before the progress is recorded, so a run that
dies mid-way resumes from its last finished batch: nothing lost, nothing doubled.

State (`nocodb_sync/state.json` in the group's storage) per table: the committed watermark
(`last_id`, `last_updated`) and, while a sync is under way, the sync's own query and how far it got.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engagement_assets.conversations.anonymise import Anonymiser
from engagement_assets.conversations.records import latest_versions, parse_rows, row_ids
from engagement_assets.storage.store import Store

STATE_KEY = "nocodb_sync/state.json"
RAW = "nocodb_sync/raw"
DAY_INDEX = f"{RAW}/conversation_days.parquet"
TABLES = ("conversations", "messages")
KEYS = {"conversations": "conversation_id", "messages": "message_id"}
# Updates made while a sync runs may carry times just before its start as NocoDB's clock sees it;
# reading a few minutes again is harmless (merges are idempotent), missing them is not.
CLOCK_MARGIN = timedelta(minutes=5)


@dataclass
class SyncReport:
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    anonymised: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    days: set[date] = field(default_factory=set)
    resumed: bool = False


PageSource = Callable[..., Iterator[list[dict]]]


def load_state(store: Store) -> dict:
    try:
        return json.loads(store.read_bytes(STATE_KEY))
    except FileNotFoundError:
        return {}


def save_state(store: Store, state: dict) -> None:
    store.put_bytes(json.dumps(state, indent=2, sort_keys=True).encode(), STATE_KEY)


def sync(
    pages: PageSource,
    store: Store,
    batch_size: int,
    now: datetime | None = None,
    stop_after: int | None = None,
    anonymiser: Anonymiser | None = None,
) -> SyncReport:
    """Pull what changed since the last sync into the raw day files. `pages(table, after_id, updated_after,
    start_after)` yields pages of rows sorted by Id. `stop_after` ends the sync after that many batches
    (tests use it to leave a sync half done, as a crash would)."""
    state = load_state(store)
    report = SyncReport()
    started = (now or datetime.now(UTC)).replace(tzinfo=None)
    for table in TABLES:
        progress = state.get("in_progress", {}).get(table)
        report.resumed |= progress is not None
        progress = progress or _new_progress(state.get(table, {}), started)
        state.setdefault("in_progress", {})[table] = progress
        rows = pages(table, progress["after_id"], progress["updated_after"], progress["cursor"])
        for batch in _batches(rows, batch_size):
            if stop_after is not None and report.batches >= stop_after:
                return report
            _merge_batch(store, table, batch, report, anonymiser)
            # Rows whose Id no cursor can follow were rejected: they do not move the cursor.
            ids = row_ids(pd.Series([row.get("Id") for row in batch], dtype=object)).dropna()
            progress["cursor"] = int(ids.max()) if len(ids) else progress["cursor"]
            save_state(store, state)  # only now: the batch is in the raw files
            report.batches += 1
        state[table] = _committed(progress)
        del state["in_progress"][table]
        save_state(store, state)
    if anonymiser:
        report.anonymised = dict(anonymiser.counts)
    return report


def _new_progress(watermark: dict, started: datetime) -> dict:
    return {
        "after_id": watermark.get("last_id"),
        "updated_after": watermark.get("last_updated"),
        "cursor": None,  # how far this sync got, for a resume: it pages the same query past it
        "started": started.isoformat(sep=" "),
    }


def _committed(progress: dict) -> dict:
    """The next sync's watermark: every Id seen, and every update made before this sync started (it read
    all rows updated after the previous watermark), less a margin for the two clocks."""
    started = datetime.fromisoformat(progress["started"]) - CLOCK_MARGIN
    last_id = max((i for i in (progress["after_id"], progress["cursor"]) if i is not None), default=None)
    return {"last_id": last_id, "last_updated": started.isoformat(sep=" ")}


def _batches(pages: Iterable[list[dict]], size: int) -> Iterator[list[dict]]:
    pending: list[dict] = []
    for page in pages:
        pending.extend(page)
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    if pending:
        yield pending


def _merge_batch(
    store: Store, table: str, batch: list[dict], report: SyncReport, anonymiser: Anonymiser | None
) -> None:
    parsed = parse_rows(table, batch)
    if anonymiser:
        parsed = anonymiser.apply(parsed)
    report.rows[table] += len(parsed.rows)
    for reason, count in parsed.reasons.items():
        report.rejected[f"{table}: {reason}"] = report.rejected.get(f"{table}: {reason}", 0) + count
    if len(parsed.rejected):
        _append(store, f"{RAW}/rejected.parquet", parsed.rejected.astype({"Id": "Int64"}))
    if parsed.rows.empty:
        return
    days = _days_of(store, table, parsed.rows)
    for day, rows in parsed.rows.groupby(days):
        key = raw_day_key(table, day.date())
        merged = pd.concat(
            [frame for frame in (_read(store, key), rows) if frame is not None], ignore_index=True
        )
        _write(store, key, latest_versions(merged, KEYS[table]))
        report.days.add(day.date())
    if table == "conversations":
        index = pd.DataFrame({"conversation_id": parsed.rows["conversation_id"], "day": days.values})
        _write(
            store,
            DAY_INDEX,
            pd.concat([_read(store, DAY_INDEX), index]).drop_duplicates("conversation_id", keep="last"),
        )


def _days_of(store: Store, table: str, rows: pd.DataFrame) -> pd.Series:
    """The conversation's date for every row: a message belongs to the day its conversation started (a
    conversation past midnight stays whole), or to its own day while its conversation is still unknown."""
    if table == "conversations":
        return rows["started_at"].dt.normalize()
    index = _read(store, DAY_INDEX)
    known = {} if index is None else dict(zip(index["conversation_id"], index["day"], strict=True))
    return rows["conversation_id"].map(known).fillna(rows["sent_at"].dt.normalize()).astype("datetime64[ns]")


def raw_day_key(table: str, day: date) -> str:
    return f"{RAW}/{table}/date={day.isoformat()}.parquet"


def read_raw_day(store: Store, table: str, day: date) -> pd.DataFrame | None:
    return _read(store, raw_day_key(table, day))


def _read(store: Store, key: str) -> pd.DataFrame | None:
    try:
        return pq.read_table(io.BytesIO(store.read_bytes(key))).to_pandas()
    except FileNotFoundError:
        return None


def _write(store: Store, key: str, frame: pd.DataFrame) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    store.put_bytes(sink.getvalue(), key)


def _append(store: Store, key: str, frame: pd.DataFrame) -> None:
    existing = _read(store, key)
    _write(store, key, frame if existing is None else pd.concat([existing, frame], ignore_index=True))
