"""Stage 6: phase-level engagement features of one learner, and their stored columns.

A phase is one practice step of one session at one milestone level, named from the lesson row's
`Progress`. Rows without a lesson row or with a progress that names no phase (a game over, e.g. 26) are
excluded and counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from engagement_assets.analysis.schema import CATEGORY_SETS, METRICS, METRICS_SCHEMA
from engagement_assets.storage.columns import column

PHASE_BY_PROGRESS = {
    10: "P1",
    20: "P2",
    30: "P3",
    40: "P4",
    50: "S1",
    60: "P5",
    70: "P6",
    80: "P7",
    90: "P8",
    0: "S2",
}
PHASE_ORDER = {
    phase: rank for rank, phase in enumerate(["P1", "P2", "P3", "P4", "S1", "P5", "P6", "P7", "P8", "S2"])
}
GROUP = ["UserId", "SessionId", "MilestoneLevel", "Phase"]
CATEGORIES = tuple(CATEGORY_SETS)

_TEXT, _TIME, _NUMBER = pa.string(), pa.timestamp("ms"), pa.float64()
# The original export's columns, in its order; the added columns follow.
FEATURES_SCHEMA = pa.schema(
    [
        column("UserId", _TEXT, "the learner id"),
        column("SessionId", _TEXT, "the session of the phase's lesson rows"),
        column("MilestoneLevel", _TEXT, "the learner's level during the phase"),
        column("Phase", _TEXT, "P1…P4, S1, P5…P8, S2"),
        column("start_time", _TIME, "first lesson-row time of the phase"),
        column("end_time", _TIME, "last response time of the phase"),
        column("session_duration_mins", _NUMBER, "end_time - start_time, minutes (negative under nearest)"),
        column("gap_to_next_mins", _NUMBER, "minutes from end_time to the learner's next phase start"),
        column("num_responses", pa.int64(), "responses in the phase"),
        column("avg_accuracy", _NUMBER, "mean app accuracy score, 0-100"),
        column("avg_EQ", _NUMBER, "mean EQ_score of analysed responses"),
        column("avg_Engagement", _NUMBER, "mean engagement_score of analysed responses"),
        column("EQ_Accuracy_Score", _NUMBER, "0.6 * avg_EQ + 0.4 * avg_accuracy"),
        *(METRICS_SCHEMA.field(name) for name in CATEGORIES),
        column("first_response_at", _TIME, "first response time of the phase"),
        column("active_mins", _NUMBER, "end_time - first_response_at, minutes"),
    ]
)
FEATURE_COLUMNS = tuple(FEATURES_SCHEMA.names)
ADDED_COLUMNS = ("first_response_at", "active_mins")
ORIGINAL_COLUMNS = FEATURE_COLUMNS[: -len(ADDED_COLUMNS)]
BOUNDED_SCORES = ("avg_accuracy", "avg_EQ", "avg_Engagement", "EQ_Accuracy_Score")

NO_SESSION = "no_session"
UNMAPPED_PROGRESS = "unmapped_progress"


@dataclass(frozen=True)
class PhaseFeatures:
    features: pd.DataFrame
    excluded: Counter = field(default_factory=Counter)


def phase_of(progress: pd.Series) -> pd.Series:
    """P1…P8, S1, S2 from a lesson row's progress; missing for any other value."""
    return progress.map(
        lambda value: PHASE_BY_PROGRESS.get(value) if pd.notna(value) and value == int(value) else None
    )


def phase_features(merged: pd.DataFrame, analysis: pd.DataFrame) -> PhaseFeatures:
    """Aggregate one learner's merged responses (stage 3) and their analysis (stage 5) per phase."""
    rows = merged.merge(
        analysis[["event_mid", "event_ets", *METRICS]], on=["event_mid", "event_ets"], how="left"
    )
    rows["Phase"] = phase_of(rows["Progress"])
    no_session = rows["SessionId"].isna()
    unmapped = ~no_session & rows["Phase"].isna()
    excluded = Counter({NO_SESSION: int(no_session.sum()), UNMAPPED_PROGRESS: int(unmapped.sum())})
    rows = rows[~no_session & ~unmapped]
    if rows.empty:
        return PhaseFeatures(empty_features(), excluded)
    grouped = rows.groupby(GROUP, sort=False, dropna=False)
    features = grouped.agg(
        start_time=("CreatedAt_Session", "min"),
        end_time=("CreatedAt_Response", "max"),
        first_response_at=("CreatedAt_Response", "min"),
        num_responses=("event_mid", "size"),
        avg_accuracy=("accuracy_percentage", "mean"),
        avg_EQ=("EQ_score", "mean"),
        avg_Engagement=("engagement_score", "mean"),
    )
    for category in CATEGORIES:
        features[category] = grouped[category].agg(most_frequent)
    features = features.reset_index()
    features["session_duration_mins"] = _minutes(features["end_time"] - features["start_time"])
    features["active_mins"] = _minutes(features["end_time"] - features["first_response_at"])
    features["EQ_Accuracy_Score"] = 0.6 * features["avg_EQ"] + 0.4 * features["avg_accuracy"]
    features["gap_to_next_mins"] = _gap_to_next(features)
    return PhaseFeatures(_ordered(features)[list(FEATURE_COLUMNS)].reset_index(drop=True), excluded)


def most_frequent(values: pd.Series):
    """The most frequent non-null value, ties to the alphabetically first; None when all are null."""
    counts = values.dropna().astype(str).value_counts()
    if counts.empty:
        return None
    return min(counts[counts == counts.max()].index)


def _gap_to_next(features: pd.DataFrame) -> pd.Series:
    ordered = _ordered(features)
    next_start = ordered.groupby("UserId", sort=False)["start_time"].shift(-1)
    return _minutes(next_start - ordered["end_time"]).reindex(features.index)


def _ordered(features: pd.DataFrame) -> pd.DataFrame:
    rank = features["Phase"].map(PHASE_ORDER)
    return (
        features.assign(_rank=rank)
        .sort_values(["UserId", "start_time", "SessionId", "_rank"], kind="stable")
        .drop(columns="_rank")
    )


def _minutes(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 60


def empty_features() -> pd.DataFrame:
    return FEATURES_SCHEMA.empty_table().to_pandas()
