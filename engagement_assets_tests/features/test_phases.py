"""Phase features: mapping, grouping, means, modes, durations and gaps."""

from __future__ import annotations

import pandas as pd
import pytest

from engagement_assets.features.phases import FEATURE_COLUMNS, most_frequent, phase_features, phase_of

T0 = pd.Timestamp("2025-06-12 10:00:00")


def merged(rows) -> pd.DataFrame:
    """rows of (mid, session, level, progress, response offset, lesson offset, accuracy)."""
    return pd.DataFrame(
        {
            "event_mid": [r[0] for r in rows],
            "event_ets": pd.Series([T0] * len(rows), dtype="datetime64[ms]"),
            "UserId": ["u1"] * len(rows),
            "SessionId": [r[1] for r in rows],
            "MilestoneLevel": [r[2] for r in rows],
            "Progress": [r[3] for r in rows],
            "CreatedAt_Response": pd.Series([T0 + pd.Timedelta(r[4]) for r in rows], dtype="datetime64[ms]"),
            "CreatedAt_Session": pd.Series(
                [None if r[5] is None else T0 + pd.Timedelta(r[5]) for r in rows], dtype="datetime64[ms]"
            ),
            "accuracy_percentage": [r[6] for r in rows],
        }
    )


def analysis(mids, eq=None, engagement=None, emotion=None) -> pd.DataFrame:
    n = len(mids)
    return pd.DataFrame(
        {
            "event_mid": mids,
            "event_ets": pd.Series([T0] * n, dtype="datetime64[ms]"),
            "EQ_score": eq or [None] * n,
            "engagement_score": engagement or [None] * n,
            "dominant_emotion": emotion or [None] * n,
            "engagement_state": [None] * n,
            "pronunciation_accuracy": [None] * n,
            "audio_quality": [None] * n,
        }
    )


def test_progress_to_phase():
    progress = pd.Series([10, 20, 30, 40, 50, 60, 70, 80, 90, 0, 26, None, 10.0, 100])
    assert [None if pd.isna(phase) else phase for phase in phase_of(progress)] == [
        "P1",
        "P2",
        "P3",
        "P4",
        "S1",
        "P5",
        "P6",
        "P7",
        "P8",
        "S2",
        None,
        None,
        "P1",
        None,
    ]


def test_one_phase_aggregated():
    rows = merged([("a", "S", "m1", 10, "0s", "130s", 50.0), ("b", "S", "m1", 10, "120s", "130s", 70.0)])
    result = phase_features(
        rows, analysis(["a", "b"], eq=[80, 60], engagement=[10, None], emotion=["fear", "fear"])
    )
    (row,) = result.features.to_dict("records")
    assert (
        row["Phase"],
        row["num_responses"],
        row["avg_accuracy"],
        row["avg_EQ"],
        row["avg_Engagement"],
    ) == ("P1", 2, 60.0, 70.0, 10.0)
    assert row["EQ_Accuracy_Score"] == pytest.approx(0.6 * 70 + 0.4 * 60)
    assert row["start_time"] == T0 + pd.Timedelta("130s") and row["end_time"] == T0 + pd.Timedelta("120s")
    assert row["session_duration_mins"] == pytest.approx(-10 / 60)  # negative under the nearest rule: kept
    assert row["active_mins"] == pytest.approx(2.0)
    assert row["dominant_emotion"] == "fear"
    assert pd.isna(row["gap_to_next_mins"])
    assert list(result.features.columns) == list(FEATURE_COLUMNS)


def test_all_null_metrics_give_null_means_and_modes():
    rows = merged([("a", "S", "m1", 10, "0s", "10s", 50.0)])
    (row,) = phase_features(rows, analysis(["a"])).features.to_dict("records")
    assert pd.isna(row["avg_EQ"]) and pd.isna(row["EQ_Accuracy_Score"]) and row["dominant_emotion"] is None


def test_mode_ties_go_to_the_alphabetically_first():
    assert most_frequent(pd.Series(["sadness", "fear", "sadness", "fear", None])) == "fear"
    assert most_frequent(pd.Series([None, None])) is None
    assert most_frequent(pd.Series(["calmness", "anger", "anger"])) == "anger"


def test_gaps_follow_time_then_session_then_phase_order_and_the_last_is_null():
    rows = merged(
        [
            ("a", "S1", "m1", 10, "0s", "60s", 1.0),
            ("b", "S1", "m1", 20, "90s", "120s", 1.0),
            ("c", "S2", "m1", 0, "3600s", "3700s", 1.0),
            ("d", "S1", "m2", 0, "100s", "120s", 1.0),  # same start as P2: S2 sorts after P2
        ]
    )
    features = phase_features(rows, analysis(["a", "b", "c", "d"])).features
    assert features["Phase"].tolist() == ["P1", "P2", "S2", "S2"]
    assert features["SessionId"].tolist() == ["S1", "S1", "S1", "S2"]
    gaps = features["gap_to_next_mins"].tolist()
    assert gaps[0] == pytest.approx((120 - 0) / 60)  # next start 120 s − this end (last response) 0 s
    assert gaps[1] == pytest.approx((120 - 90) / 60)
    assert gaps[2] == pytest.approx((3700 - 100) / 60)
    assert pd.isna(gaps[3])


def test_unmatched_and_unmapped_rows_are_excluded_and_counted():
    rows = merged(
        [
            ("a", "S", "m1", 10, "0s", "10s", 1.0),
            ("b", None, None, None, "0s", None, 1.0),
            ("c", "S", "m1", 26, "0s", "10s", 1.0),
        ]
    )
    result = phase_features(rows, analysis(["a", "b", "c"]))
    assert len(result.features) == 1
    assert dict(result.excluded) == {"no_session": 1, "unmapped_progress": 1}


def test_a_learner_with_nothing_to_aggregate_gets_a_typed_empty_table():
    result = phase_features(merged([]), analysis([]))
    assert result.features.empty and list(result.features.columns) == list(FEATURE_COLUMNS)
