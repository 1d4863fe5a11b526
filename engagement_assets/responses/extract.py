"""Stage 2: one learner's responses across every drop, deduplicated and in time order.

All requested learners are extracted in one pass over the cleaned Parquet parts. The parts are sorted by
learner with small row groups, so the filter on the batch's `user_id` range skips row groups that hold
only other learners; each learner's table is then a zero-copy slice of one sorted table.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engagement_assets.ingestion.parsing import RESPONSE_SCHEMA
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.store import Store

CLEANED_PREFIX = "cleaned_telemetry/"
# Within a learner: by arrival, missing times last, ties in a stable order.
_TIME_ORDER = [("created_at", "ascending"), ("event_mid", "ascending"), ("event_ets", "ascending")]


def cleaned_part_keys(store: Store) -> list[str]:
    return [stored.key for stored in store.list_files(CLEANED_PREFIX) if stored.key.endswith(".parquet")]


def extract_learner_responses(store: Store, learners: list[str]) -> dict[str, pa.Table]:
    """{learner: their responses} as Arrow tables, deduplicated on (event_mid, event_ets) keeping the
    earliest created_at, sorted by created_at. Learners with no responses get an empty table."""
    wanted = sorted(set(learners))
    parts = cleaned_part_keys(store)
    table = RESPONSE_SCHEMA.empty_table()
    if parts and wanted:
        # The range lets pyarrow skip row groups by their min/max statistics (it does not for a long
        # isin list); the isin then keeps exactly the learners asked for.
        user = pc.field("user_id")
        wanted_rows = (user >= wanted[0]) & (user <= wanted[-1]) & user.isin(wanted)
        table = read_parquet(store, parts, schema=RESPONSE_SCHEMA, filter=wanted_rows)
    # Stage 1 already removed duplicates within a drop: only responses from several drops can repeat.
    if len({_drop_of(key) for key in parts}) > 1:
        table = deduplicate(table)
    responses = table.sort_by([("user_id", "ascending"), *_TIME_ORDER])
    spans = _learner_spans(responses.column("user_id").to_numpy(zero_copy_only=False))
    empty = responses.slice(0, 0)
    return {learner: responses.slice(*spans[learner]) if learner in spans else empty for learner in learners}


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


def _drop_of(part_key: str) -> str:
    return part_key[len(CLEANED_PREFIX) :].split("/", 1)[0]


def _learner_spans(users: np.ndarray) -> dict[str, tuple[int, int]]:
    """(offset, length) of each learner's rows in an array sorted by learner."""
    if not len(users):
        return {}
    starts = np.concatenate(([0], np.flatnonzero(users[1:] != users[:-1]) + 1))
    stops = np.append(starts[1:], len(users))
    return {users[start]: (int(start), int(stop - start)) for start, stop in zip(starts, stops, strict=True)}


def learner_ids(store: Store) -> list[str]:
    """Every learner with at least one cleaned response, sorted."""
    return _distinct_learners(store, cleaned_part_keys(store))


def learners_in_drops(store: Store, drops: list[str]) -> list[str]:
    """The learners with responses in these drops, sorted."""
    wanted = set(drops)
    return _distinct_learners(store, [key for key in cleaned_part_keys(store) if _drop_of(key) in wanted])


def _distinct_learners(store: Store, parts: list[str]) -> list[str]:
    if not parts:
        return []
    column = read_parquet(store, parts, schema=RESPONSE_SCHEMA, columns=["user_id"]).column("user_id")
    return sorted(value for value in pc.unique(column).to_pylist() if value is not None)
