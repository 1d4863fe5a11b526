"""Each learner's risk of stopping: the probability that they start no further phase within 7 days of
their latest one, a band, and the model's three strongest reasons in a teacher's words.

The reasons are the model's own terms for that learner (a linear model's prediction is their sum): the
three features that push the probability up the most, each said with the learner's value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from engagement_assets.prediction.model import LinearModel
from engagement_assets.prediction.training_set import LABEL
from engagement_assets.storage.columns import column

REASONS = 3
HIGH, MEDIUM, LOW, UNKNOWN = "high", "medium", "low", "unknown"
SCORED, NO_MODEL = "scored", "no_model"

RISK_SCHEMA = pa.schema(
    [
        column("UserId", pa.string(), "the learner id"),
        column("MilestoneLevel", pa.string(), "the learner's level in their latest phase"),
        column("Phase", pa.string(), "the latest phase"),
        column("end_time", pa.timestamp("us"), "when the latest phase ended"),
        column(
            "days_since_last_practice",
            pa.float64(),
            "days from the latest phase to the latest event in the data",
        ),
        column(
            "probability", pa.float64(), "chance of starting no further phase within 7 days; null: no model"
        ),
        column("band", pa.string(), "high, medium, low (thresholds configurable), unknown without a model"),
        *(column(f"reason_{n}", pa.string(), f"the model's {n}. strongest reason") for n in range(1, 4)),
        column("status", pa.string(), "scored, or no_model (with the model's status in the metadata)"),
    ]
)
RISK_COLUMNS = tuple(RISK_SCHEMA.names)


def learner_risk(
    rows: pd.DataFrame, latest_event, model: LinearModel | None, high: float, medium: float
) -> pd.DataFrame:
    """One row per learner whose latest phase is not labelled yet (ended within 7 days of the latest
    event): the learners whose next step is still open."""
    latest = rows.sort_values("end_time", kind="stable").groupby("UserId", sort=True).tail(1)
    open_ = latest[latest[LABEL].isna()].reset_index(drop=True)
    risk = open_[["UserId", "MilestoneLevel", "Phase", "end_time"]].copy()
    risk["days_since_last_practice"] = (latest_event - open_["end_time"]).dt.total_seconds() / 86_400
    if model is None or open_.empty:
        risk["probability"] = np.nan
        risk["band"] = UNKNOWN
        for n in range(1, REASONS + 1):
            risk[f"reason_{n}"] = None
        risk["status"] = NO_MODEL if model is None else SCORED
        return risk[list(RISK_COLUMNS)]
    probability = model.probability(open_)
    risk["probability"] = probability
    risk["band"] = np.where(probability >= high, HIGH, np.where(probability >= medium, MEDIUM, LOW))
    reasons = top_reasons(open_, model.contributions(open_))
    for n in range(REASONS):
        risk[f"reason_{n + 1}"] = [found[n] if len(found) > n else None for found in reasons]
    risk["status"] = SCORED
    return risk[list(RISK_COLUMNS)]


def top_reasons(rows: pd.DataFrame, contributions: pd.DataFrame, count: int = REASONS) -> list[list[str]]:
    """Per row, the features that raise the risk the most (positive terms only), in words."""
    features, terms = list(contributions.columns), contributions.to_numpy()
    values = rows[features].to_numpy(dtype=float)
    strongest = np.argsort(-terms, axis=1, kind="stable")[:, :count]
    return [
        [in_words(features[j], values[i, j]) for j in order if terms[i, j] > 0]
        for i, order in enumerate(strongest)
    ]


def in_words(feature: str, value: float) -> str:
    """A feature's value as a teacher would say it."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return f"{feature.replace('_', ' ')} unknown"
    phrase = _PHRASES.get(feature)
    return phrase(float(value)) if phrase else f"{feature.replace('_', ' ')} {value:g}"


def _change(subject: str):
    def said(value: float) -> str:
        if value < 0:
            return f"{subject} fell {-value:.0f} points over the last 3 phases"
        return f"{subject} rose {value:.0f} points over the last 3 phases"

    return said


_PHRASES = {
    "accuracy_change": _change("accuracy"),
    "engagement_change": _change("engagement"),
    "avg_accuracy": lambda v: f"accuracy of {v:.0f} in the latest phase",
    "avg_Engagement": lambda v: f"engagement in the voice of {v:.0f}/100 in the latest phase",
    "avg_EQ": lambda v: f"voice expressiveness of {v:.0f}/100 in the latest phase",
    "num_responses": lambda v: f"{v:.0f} answers in the latest phase",
    "active_mins": lambda v: f"{v:.0f} minutes of practice in the latest phase",
    "days_since_previous_phase": lambda v: f"{v:.0f} days between the last two practices",
    "phases_so_far": lambda v: f"{v:.0f} phases completed so far",
    "sessions_so_far": lambda v: f"{v:.0f} sessions so far",
    "days_active": lambda v: f"active on {v:.0f} days so far",
    "poor_audio_share": lambda v: f"{v:.0%} of phases with mostly blank or poor audio",
}
