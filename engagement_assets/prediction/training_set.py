"""Rows to learn from: one per learner × phase occurrence, with what was known when the phase ended.

Every feature of a row is computed from the learner's phases that had ended by the row's `end_time`
(the phase itself and earlier ones), never from anything later; `gap_to_next_mins` of the phase features
looks ahead and is not used. The label `stopped_within_7d` says whether the learner started no further
phase within 7 days of `end_time`; rows ending within 7 days of the latest event in the data cannot be
labelled yet (censored): they are never trained on, and they are the ones scored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from engagement_assets.storage.columns import column

HORIZON = pd.Timedelta(days=7)
TREND_PHASES = 3
POOR_AUDIO = ("blank", "poor", "distorted")

# The model's inputs, in order, with what each means to a teacher.
FEATURE_MEANINGS = {
    "num_responses": "responses in the phase",
    "avg_accuracy": "mean accuracy in the phase, 0-100",
    "avg_Engagement": "mean engagement the voice showed in the phase, 0-100 (analysed clips only)",
    "avg_EQ": "mean expressiveness of the voice in the phase, 0-100 (analysed clips only)",
    "active_mins": "minutes from the first to the last response of the phase",
    "phases_so_far": "phases the learner has ended, this one included",
    "sessions_so_far": "sessions the learner has practised in so far",
    "days_active": "distinct days with a phase ending so far",
    "days_since_previous_phase": "days between the end of the previous phase and the end of this one",
    "accuracy_change": "accuracy now minus accuracy two phases earlier (points)",
    "engagement_change": "engagement now minus engagement two phases earlier (points)",
    "poor_audio_share": "share of the learner's phases so far whose audio was mostly blank, poor or distorted",
}
FEATURES = tuple(FEATURE_MEANINGS)
LABEL = "stopped_within_7d"
IDENTITY = ("UserId", "SessionId", "MilestoneLevel", "Phase")

TRAINING_SCHEMA = pa.schema(
    [
        column("UserId", pa.string(), "the learner id"),
        column("SessionId", pa.string(), "the session of the phase"),
        column("MilestoneLevel", pa.string(), "the learner's level during the phase"),
        column("Phase", pa.string(), "P1…P8, S1, S2"),
        column("end_time", pa.timestamp("us"), "when the phase ended: every feature is as of this time"),
        *(column(name, pa.float64(), meaning) for name, meaning in FEATURE_MEANINGS.items()),
        column(LABEL, pa.bool_(), "no further phase started within 7 days of end_time; null: not known yet"),
    ]
)
NO_END_TIME = "no_end_time"


@dataclass(frozen=True)
class TrainingSet:
    rows: pd.DataFrame
    latest_event: pd.Timestamp | None
    dropped: Counter


def training_set(phases: pd.DataFrame) -> TrainingSet:
    """The rows of every learner's phase features (the phase-level engagement table)."""
    usable = phases[phases["end_time"].notna()]
    dropped = Counter({NO_END_TIME: len(phases) - len(usable)} if len(usable) < len(phases) else {})
    if usable.empty:
        return TrainingSet(_empty(), None, dropped)
    latest = usable["end_time"].max()
    ordered = usable.sort_values(["UserId", "end_time", "start_time"], kind="stable").reset_index(drop=True)
    return TrainingSet(_rows(ordered, latest)[list(TRAINING_SCHEMA.names)], latest, dropped)


def _rows(phases: pd.DataFrame, latest: pd.Timestamp) -> pd.DataFrame:
    """Features and label of each phase; `phases` sorted by learner, then end_time."""
    learner = phases["UserId"]
    by_learner = phases.groupby("UserId", sort=False)
    rows = phases[[*IDENTITY, "end_time"]].copy()
    rows["num_responses"] = phases["num_responses"].astype(float)
    for name in ("avg_accuracy", "avg_Engagement", "avg_EQ", "active_mins"):
        rows[name] = phases[name].astype(float)
    rows["phases_so_far"] = by_learner.cumcount().astype(float) + 1
    rows["sessions_so_far"] = _running_count(~phases.duplicated(["UserId", "SessionId"]), learner)
    first_on_day = ~pd.DataFrame({"u": learner, "d": phases["end_time"].dt.normalize()}).duplicated()
    rows["days_active"] = _running_count(first_on_day, learner)
    rows["days_since_previous_phase"] = (by_learner["end_time"].diff().dt.total_seconds() / 86_400).fillna(
        0.0
    )
    for name, source in (("accuracy_change", "avg_accuracy"), ("engagement_change", "avg_Engagement")):
        # The change over the last TREND_PHASES phases; 0 until there are that many (no trend yet).
        earlier = rows.groupby("UserId", sort=False)[source].shift(TREND_PHASES - 1)
        rows[name] = (rows[source] - earlier).fillna(0.0)
    poor = phases["audio_quality"].isin(POOR_AUDIO).astype(float)
    rows["poor_audio_share"] = poor.groupby(learner, sort=False).cumsum() / rows["phases_so_far"]
    rows[LABEL] = _stopped(phases, latest)
    return rows


def _running_count(flags: pd.Series, learner: pd.Series) -> pd.Series:
    return flags.astype(float).groupby(learner, sort=False).cumsum()


def _stopped(phases: pd.DataFrame, latest: pd.Timestamp) -> pd.Series:
    """Whether no phase of the same learner started in the 7 days after each phase's end; null when
    those 7 days reach past the latest event."""
    starts = pd.DataFrame(
        {
            "UserId": phases["UserId"],
            "next_start": phases["start_time"].fillna(phases["first_response_at"]).fillna(phases["end_time"]),
        }
    ).sort_values("next_start", kind="stable")
    ends = phases[["UserId", "end_time"]].reset_index().sort_values("end_time", kind="stable")
    following = (
        pd.merge_asof(
            ends,
            starts,
            left_on="end_time",
            right_on="next_start",
            by="UserId",
            direction="forward",
            allow_exact_matches=False,
        )
        .set_index("index")
        .reindex(phases.index)
    )
    came_back = following["next_start"] <= following["end_time"] + HORIZON
    stopped = (~came_back).astype("boolean")
    return stopped.mask(phases["end_time"] + HORIZON > latest)


def _empty() -> pd.DataFrame:
    return TRAINING_SCHEMA.empty_table().to_pandas()
