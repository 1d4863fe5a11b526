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

# The per-learner and per-drop tables profiles are read from, by the name the query gives them.
SOURCES = ("responses", "merged", "attributes")
SHARED, OWN = "shared", "own"
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
        column("language", pa.string(), "the content language of their answers (only en is kept)"),
        column("school_name", pa.string(), "their school, where the telemetry names it (latest)"),
        column("udise_code", pa.string(), "their school's UDISE code, where the telemetry has it (latest)"),
        column("class_studying_id", pa.string(), "their class, where the telemetry has it (latest)"),
        column("app_build", pa.string(), "the app and version of their latest answer, e.g. all.ll.app 1.4.1"),
        column(
            "device",
            pa.string(),
            f"{SHARED}: another learner answered on one of their devices; {OWN}: no one else did; "
            "empty: the telemetry names no device",
        ),
        column("devices", pa.int64(), "distinct devices they answered on"),
    ]
)
# The attributes a cohort can be defined by (the text-valued profile columns).
COHORT_ATTRIBUTES = (
    "latest_milestone_level",
    "start_week",
    "id_source",
    "language",
    "school_name",
    "udise_code",
    "class_studying_id",
    "app_build",
    "device",
)

_PROFILES = f"""
WITH answers AS (
    SELECT user_id AS UserId, min(event_ets) AS first_seen, max(event_ets) AS last_seen,
           count(*) AS responses, count(DISTINCT session_id) AS sessions,
           count(DISTINCT CAST(event_ets AS DATE)) AS days_active, mode(user_id_source) AS id_source,
           mode(language) AS language
    FROM responses GROUP BY user_id
), device_learners AS (
    SELECT device_id, count(DISTINCT user_id) AS learners
    FROM attributes WHERE device_id IS NOT NULL GROUP BY device_id
), seen AS (
    SELECT user_id AS UserId,
           arg_max(school_name, last_seen) FILTER (WHERE school_name IS NOT NULL) AS school_name,
           arg_max(udise_code, last_seen) FILTER (WHERE udise_code IS NOT NULL) AS udise_code,
           arg_max(class_studying_id, last_seen) FILTER (WHERE class_studying_id IS NOT NULL) AS class_studying_id,
           arg_max(concat_ws(' ', app_id, app_version), last_seen) FILTER (WHERE app_id IS NOT NULL) AS app_build,
           CASE WHEN bool_or(learners > 1) THEN '{SHARED}' WHEN count(device_id) > 0 THEN '{OWN}' END AS device,
           count(DISTINCT device_id) AS devices
    FROM attributes LEFT JOIN device_learners USING (device_id) GROUP BY user_id
), levels AS (
    SELECT UserId,
           string_agg(DISTINCT MilestoneLevel, ',' ORDER BY MilestoneLevel) AS milestone_levels,
           arg_max(MilestoneLevel, event_ets) FILTER (WHERE MilestoneLevel IS NOT NULL) AS latest_milestone_level,
           avg(CASE WHEN SessionId IS NULL THEN 0 ELSE 1 END) AS matched_share
    FROM merged GROUP BY UserId
)
SELECT answers.UserId, first_seen, last_seen, strftime(first_seen, '%G-W%V') AS start_week, responses,
       sessions, days_active, id_source, milestone_levels, latest_milestone_level, matched_share, language,
       school_name, udise_code, class_studying_id, app_build, device, coalesce(devices, 0) AS devices
FROM answers LEFT JOIN levels USING (UserId) LEFT JOIN seen USING (UserId)
ORDER BY answers.UserId
"""


def learner_profiles(store: Store, sources: dict[str, tuple[str, pa.Schema]]) -> pd.DataFrame:
    """Every learner with answers. `sources` names, for each of SOURCES, the asset whose partition files
    hold it and their schema: every learner's answers and matched answers, every drop's learner attributes."""
    con = duckdb.connect(config={"memory_limit": "512MB"})
    try:
        for name in SOURCES:
            con.register(name, _dataset(store, *sources[name]))
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
