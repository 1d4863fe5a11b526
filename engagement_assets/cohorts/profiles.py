"""Learner profiles: one row per learner with what the platform knows about them, the attributes cohorts
are defined by. Read with DuckDB straight from the per-learner files, like the phase-level table."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from engagement_assets.storage import layout
from engagement_assets.storage.columns import column
from engagement_assets.storage.store import Store

RESPONSES, MERGED = "user_responses", "merged_responses"
PROFILE_SCHEMA = pa.schema(
    [
        column("UserId", pa.string(), "the learner id"),
        column("first_seen", pa.timestamp("ms"), "their first recorded answer"),
        column("last_seen", pa.timestamp("ms"), "their latest recorded answer"),
        column("start_week", pa.string(), "ISO week of the first answer (the cohort they joined in)"),
        column("responses", pa.int64(), "spoken answers recorded"),
        column("sessions", pa.int64(), "distinct app sessions"),
        column("days_active", pa.int64(), "distinct days with an answer"),
        column(
            "id_source",
            pa.string(),
            "where the app build put the learner id: virtualId, buddy, jwt, User, uid",
        ),
        column("milestone_levels", pa.string(), "milestone levels reached, in order (from the lesson rows)"),
        column("latest_milestone_level", pa.string(), "the level of their latest matched answer"),
        column("matched_share", pa.float64(), "share of answers matched to a lesson row"),
    ]
)
# The attributes a cohort can be defined by (the text-valued profile columns).
COHORT_ATTRIBUTES = ("latest_milestone_level", "start_week", "id_source")

_PROFILES = """
WITH answers AS (
    SELECT user_id AS UserId, min(event_ets) AS first_seen, max(event_ets) AS last_seen,
           count(*) AS responses, count(DISTINCT session_id) AS sessions,
           count(DISTINCT CAST(event_ets AS DATE)) AS days_active, mode(user_id_source) AS id_source
    FROM responses GROUP BY user_id
), levels AS (
    SELECT UserId,
           string_agg(DISTINCT MilestoneLevel, ',' ORDER BY MilestoneLevel) AS milestone_levels,
           arg_max(MilestoneLevel, event_ets) FILTER (WHERE MilestoneLevel IS NOT NULL) AS latest_milestone_level,
           avg(CASE WHEN SessionId IS NULL THEN 0 ELSE 1 END) AS matched_share
    FROM merged GROUP BY UserId
)
SELECT answers.UserId, first_seen, last_seen, strftime(first_seen, '%G-W%V') AS start_week, responses,
       sessions, days_active, id_source, milestone_levels, latest_milestone_level, matched_share
FROM answers LEFT JOIN levels USING (UserId)
ORDER BY answers.UserId
"""


def learner_profiles(store: Store, responses_schema: pa.Schema, merged_schema: pa.Schema) -> pd.DataFrame:
    con = duckdb.connect(config={"memory_limit": "512MB"})
    try:
        con.register("responses", _dataset(store, RESPONSES, responses_schema))
        con.register("merged", _dataset(store, MERGED, merged_schema))
        return con.sql(_PROFILES).df()
    finally:
        con.close()


def _dataset(store: Store, asset: str, schema: pa.Schema):
    keys = layout.partition_file_keys(store, asset)
    if not keys:
        return schema.empty_table()
    filesystem, root = store.arrow()
    return ds.dataset(
        [f"{root}/{key}" for key in keys], filesystem=filesystem, format="parquet", schema=schema
    )
