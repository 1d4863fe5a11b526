"""Stage 2: one learner's responses across every drop, deduplicated and in time order.

All requested learners are extracted in one pass over the cleaned Parquet parts. The parts are sorted by
learner with small row groups, so the filter on the batch's `user_id` range skips row groups that hold
only other learners; each learner's table is then a zero-copy slice of one sorted table. Every row read is
accounted for: it is a learner's row, or a copy of a response another drop already holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engagement_assets.ingestion.events import RESPONSE_SCHEMA
from engagement_assets.storage import layout
from engagement_assets.storage.keys import key_of, storage_segment, text_of_key
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.store import Store

CLEANED = "cleaned_telemetry"
# Within a learner: by arrival, missing times last, ties in a stable order.
_TIME_ORDER = [("created_at", "ascending"), ("event_mid", "ascending"), ("event_ets", "ascending")]


@dataclass(frozen=True)
class Extraction:
    """Each learner's responses (by learner key), and how the rows read from stage 1 were used:
    `rows_read` = the learners' rows + `duplicates_across_drops`."""

    responses: dict[str, pa.Table]
    rows_read: int
    duplicates_across_drops: int


def cleaned_part_keys(store: Store) -> list[str]:
    return layout.partition_part_keys(store, CLEANED)


def extract_learner_responses(store: Store, learners: list[str]) -> Extraction:
    """The responses of the learners with these partition keys, deduplicated on (event_mid, event_ets)
    keeping the earliest created_at, sorted by created_at. Learners with no responses get an empty table."""
    ids = {learner: text_of_key(learner) for learner in learners}
    wanted = sorted(set(ids.values()))
    parts = cleaned_part_keys(store)
    table = RESPONSE_SCHEMA.empty_table()
    if parts and wanted:
        # The range lets pyarrow skip row groups by their min/max statistics (it does not for a long
        # isin list); the isin then keeps exactly the learners asked for.
        user = pc.field("user_id")
        wanted_rows = (user >= wanted[0]) & (user <= wanted[-1]) & user.isin(wanted)
        table = read_parquet(store, parts, schema=RESPONSE_SCHEMA, filter=wanted_rows)
    rows_read = table.num_rows
    # Stage 1 already removed duplicates within a drop: only responses from several drops can repeat.
    if len({layout.segment_of_part(key) for key in parts}) > 1:
        table = deduplicate(table)
    responses = table.sort_by([("user_id", "ascending"), *_TIME_ORDER])
    spans = _learner_spans(responses.column("user_id").to_numpy(zero_copy_only=False))
    empty = responses.slice(0, 0)
    return Extraction(
        {
            learner: responses.slice(*spans[ids[learner]]) if ids[learner] in spans else empty
            for learner in learners
        },
        rows_read,
        rows_read - responses.num_rows,
    )


def deduplicate(responses: pa.Table) -> pa.Table:
    """The earliest copy of each (event_mid, event_ets) (created_at nulls last), in key order."""
    ordered = responses.sort_by([("event_mid", "ascending"), ("event_ets", "ascending"), *_TIME_ORDER[:1]])
    if ordered.num_rows < 2:
        return ordered
    # Missing keys compare equal to each other, as a GROUP BY would treat them.
    mid = pc.fill_null(ordered.column("event_mid"), "").to_numpy(zero_copy_only=False)
    ets = pc.fill_null(ordered.column("event_ets").cast(pa.int64()), np.iinfo(np.int64).min).to_numpy()
    repeats = (mid[1:] == mid[:-1]) & (ets[1:] == ets[:-1])
    return ordered.filter(pa.array(np.concatenate(([True], ~repeats))))


def _learner_spans(users: np.ndarray) -> dict[str, tuple[int, int]]:
    """(offset, length) of each learner's rows in an array sorted by learner."""
    if not len(users):
        return {}
    starts = np.concatenate(([0], np.flatnonzero(users[1:] != users[:-1]) + 1))
    stops = np.append(starts[1:], len(users))
    return {users[start]: (int(start), int(stop - start)) for start, stop in zip(starts, stops, strict=True)}


def learner_keys(store: Store) -> list[str]:
    """The partition key of every learner with at least one cleaned response, sorted by learner id."""
    return _distinct_learners(store, cleaned_part_keys(store))


def learners_in_drops(store: Store, drops: list[str]) -> list[str]:
    """The partition keys of the learners with responses in these drops, sorted by learner id."""
    folders = {storage_segment(drop) for drop in drops}
    parts = [key for key in cleaned_part_keys(store) if layout.segment_of_part(key) in folders]
    return _distinct_learners(store, parts)


def _distinct_learners(store: Store, parts: list[str]) -> list[str]:
    if not parts:
        return []
    column = read_parquet(store, parts, schema=RESPONSE_SCHEMA, columns=["user_id"]).column("user_id")
    return [key_of(value) for value in sorted(pc.unique(column).to_pylist()) if value is not None]
