"""Stage 2: one learner's responses across every drop, deduplicated and in time order.

All requested learners are extracted in one pass over the cleaned Parquet parts. The parts are sorted by
learner with small row groups, so the filter on the batch's `user_id` range skips row groups that hold
only other learners; each learner's frame is then a slice of one sorted table, not a copy.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engagement_assets.ingestion.parsing import RESPONSE_SCHEMA
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.store import Store

CLEANED_PREFIX = "cleaned_telemetry/"
DEDUPE_KEY = ["event_mid", "event_ets"]
_ORDER = "created_at NULLS LAST, event_mid, event_ets"


def cleaned_part_keys(store: Store) -> list[str]:
    return [stored.key for stored in store.list_files(CLEANED_PREFIX) if stored.key.endswith(".parquet")]


def extract_learner_responses(store: Store, learners: list[str]) -> dict[str, pd.DataFrame]:
    """{learner: their responses}, deduplicated on (event_mid, event_ets) keeping the earliest created_at,
    sorted by created_at. Learners with no responses get an empty frame with the same columns."""
    wanted = sorted(set(learners))
    parts = cleaned_part_keys(store)
    table = RESPONSE_SCHEMA.empty_table()
    if parts and wanted:
        # The range lets pyarrow skip row groups by their min/max statistics (it does not for a long
        # isin list); the isin then keeps exactly the learners asked for.
        user = pc.field("user_id")
        wanted_rows = (user >= wanted[0]) & (user <= wanted[-1]) & user.isin(wanted)
        table = read_parquet(store, parts, schema=RESPONSE_SCHEMA, filter=wanted_rows)
    responses = deduplicate(table).to_pandas()
    spans = _learner_spans(responses["user_id"].to_numpy())
    empty = responses.iloc[0:0]
    return {
        learner: responses.iloc[slice(*spans[learner])] if learner in spans else empty for learner in learners
    }


def deduplicate(responses: pa.Table) -> pa.Table:
    """The earliest copy of each (event_mid, event_ets), sorted by learner, then created_at (nulls last)."""
    with duckdb.connect() as con:
        con.register("responses", responses)
        return con.sql(
            f"""SELECT * FROM responses
                QUALIFY row_number() OVER (PARTITION BY {", ".join(DEDUPE_KEY)} ORDER BY {_ORDER}) = 1
                ORDER BY user_id, {_ORDER}"""
        ).to_arrow_table()


def _learner_spans(users: np.ndarray) -> dict[str, tuple[int, int]]:
    """(start, stop) of each learner's rows in an array sorted by learner."""
    if not len(users):
        return {}
    starts = np.concatenate(([0], np.flatnonzero(users[1:] != users[:-1]) + 1))
    stops = np.append(starts[1:], len(users))
    return {users[start]: (int(start), int(stop)) for start, stop in zip(starts, stops, strict=True)}


def learner_ids(store: Store) -> list[str]:
    """Every learner with at least one cleaned response, sorted."""
    parts = cleaned_part_keys(store)
    if not parts:
        return []
    column = read_parquet(store, parts, schema=RESPONSE_SCHEMA, columns=["user_id"]).column("user_id")
    return sorted(value for value in pc.unique(column).to_pylist() if value is not None)
