"""The per-phase numbers the asset pages and the dashboard's chart show."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from engagement_assets.features.summary import Z_95, by_phase


@pytest.fixture
def features(golden) -> pd.DataFrame:
    return pd.read_csv(golden / "expected" / "phase_features.csv", dtype={"UserId": str})


def test_phase_summary_is_in_practice_order_with_means_n_and_intervals(features):
    summary = by_phase(features)
    assert list(summary.index) == ["P1", "P2", "P3", "P4", "S1", "P5", "P6", "P7"]
    p1 = features[features["Phase"] == "P1"]
    assert summary.loc["P1", "phases"] == len(p1)
    assert summary.loc["P1", "accuracy"] == pytest.approx(p1["avg_accuracy"].mean())
    half = Z_95 * p1["avg_Engagement"].std(ddof=1) / math.sqrt(p1["avg_Engagement"].count())
    assert summary.loc["P1", "engagement_ci"] == pytest.approx(half)


def test_a_phase_resting_on_one_value_has_no_interval():
    one = pd.DataFrame(
        {"Phase": ["P2", "P1", "P1"], "avg_accuracy": [50.0, 60.0, 80.0], "avg_Engagement": [1.0, 2.0, 3.0],
         "EQ_Accuracy_Score": [1.0, 1.0, 1.0]}
    )  # fmt: skip
    summary = by_phase(one)
    assert list(summary.index) == ["P1", "P2"] and summary.loc["P1", "accuracy"] == 70.0
    assert pd.isna(summary.loc["P2", "accuracy_ci"]) and summary.loc["P1", "accuracy_ci"] > 0
