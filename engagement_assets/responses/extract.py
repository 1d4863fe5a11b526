"""Stage 2: one learner's responses across every drop, deduplicated and in time order.

All requested learners are extracted in one pass over the cleaned Parquet parts. The parts are sorted by
learner with small row groups, so the `user_id` filter skips row groups that hold other learners.
"""

from __future__ import annotations

import pandas as pd
import pyarrow.compute as pc

from engagement_assets.ingestion.cleaning import RESPONSE_SCHEMA
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.store import Store

CLEANED_PREFIX = "cleaned_telemetry/"
DEDUPE_KEY = ["event_mid", "event_ets"]


def cleaned_part_keys(store: Store) -> list[str]:
    return [stored.key for stored in store.list_files(CLEANED_PREFIX) if stored.key.endswith(".parquet")]


def extract_learner_responses(store: Store, learners: list[str]) -> dict[str, pd.DataFrame]:
    """{learner: their responses}, deduplicated on (event_mid, event_ets) keeping the earliest created_at,
    sorted by created_at. Learners with no responses get an empty frame with the same columns."""
    parts = cleaned_part_keys(store)
    if parts:
        table = read_parquet(store, parts, schema=RESPONSE_SCHEMA, filter=pc.field("user_id").isin(learners))
    else:
        table = RESPONSE_SCHEMA.empty_table()
    responses = deduplicate(table.to_pandas())
    by_learner = dict(tuple(responses.groupby("user_id", sort=False)))
    empty = responses.iloc[0:0]
    return {learner: by_learner.get(learner, empty).reset_index(drop=True) for learner in learners}


def deduplicate(responses: pd.DataFrame) -> pd.DataFrame:
    """The earliest copy of each (event_mid, event_ets), in created_at order (nulls last)."""
    ordered = responses.sort_values(["created_at", *DEDUPE_KEY], na_position="last", kind="stable")
    return ordered.drop_duplicates(DEDUPE_KEY, keep="first").reset_index(drop=True)


def learner_ids(store: Store) -> list[str]:
    """Every learner with at least one cleaned response, sorted."""
    parts = cleaned_part_keys(store)
    if not parts:
        return []
    column = read_parquet(store, parts, schema=RESPONSE_SCHEMA, columns=["user_id"]).column("user_id")
    return sorted(value for value in pc.unique(column).to_pylist() if value is not None)
