"""The training set: features as of each phase's end only, the 7-day label, and censoring at the data's end."""

from __future__ import annotations

import pandas as pd

from engagement_assets.devtools.sample_data.phase_history import phase_history
from engagement_assets.prediction.training_set import FEATURES, LABEL, NO_END_TIME, training_set

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2025-03-03 10:00")


def phase(user, start, end, session="s1", accuracy=70.0, audio="good") -> dict:
    return {
        "UserId": user,
        "SessionId": session,
        "MilestoneLevel": "m1",
        "Phase": "P1",
        "start_time": start,
        "end_time": end,
        "num_responses": 5,
        "avg_accuracy": accuracy,
        "avg_EQ": 60.0,
        "avg_Engagement": 60.0,
        "audio_quality": audio,
        "first_response_at": start,
        "active_mins": 10.0,
        "gap_to_next_mins": 999.0,
    }


def test_the_label_is_whether_a_further_phase_started_within_7_days():
    phases = pd.DataFrame(
        [
            phase("a", T0, T0 + pd.Timedelta(minutes=20)),
            phase("a", T0 + 3 * DAY, T0 + 3 * DAY + pd.Timedelta(minutes=20)),  # back after 3 days
            phase("a", T0 + 20 * DAY, T0 + 20 * DAY + pd.Timedelta(minutes=20)),  # back after 17 days
            phase("b", T0 + 40 * DAY, T0 + 40 * DAY),  # the latest event: a is stopped after 20 days
        ]
    )
    rows = training_set(phases).rows
    a = rows[rows["UserId"] == "a"]
    assert a[LABEL].tolist() == [False, True, True]
    assert rows.loc[rows["UserId"] == "b", LABEL].isna().all()  # ends at the latest event: censored


def test_rows_within_7_days_of_the_latest_event_are_unlabelled():
    phases = pd.DataFrame(
        [
            phase("a", T0, T0),
            phase("a", T0 + 10 * DAY, T0 + 10 * DAY),
            phase("b", T0 + 16 * DAY, T0 + 16 * DAY),
        ]
    )
    rows = training_set(phases).rows
    assert rows[LABEL].isna().tolist() == [False, True, True]  # a's second phase ends 6 days before the end


def test_history_features_count_only_what_ended_before():
    phases = pd.DataFrame(
        [
            phase("a", T0, T0, "s1", accuracy=80, audio="poor"),
            phase("a", T0 + DAY, T0 + DAY, "s1", accuracy=70),
            phase("a", T0 + 3 * DAY, T0 + 3 * DAY, "s2", accuracy=50),
        ]
    )
    rows = training_set(phases).rows
    assert rows["phases_so_far"].tolist() == [1, 2, 3]
    assert rows["sessions_so_far"].tolist() == [1, 1, 2]
    assert rows["days_active"].tolist() == [1, 2, 3]
    assert rows["days_since_previous_phase"].tolist() == [0, 1, 2]
    assert rows["accuracy_change"].tolist() == [0, 0, -30]
    assert rows["poor_audio_share"].round(3).tolist() == [1.0, 0.5, 0.333]


def test_no_feature_changes_when_the_future_is_cut_off():
    """Leakage check: a row's features are the same whether or not the data after its end_time exists."""
    phases = phase_history(60, seed=3)
    full = training_set(phases).rows.set_index(["UserId", "end_time"])
    cut = phases["end_time"].quantile(0.5)
    past = training_set(phases[phases["end_time"] <= cut]).rows.set_index(["UserId", "end_time"])
    pd.testing.assert_frame_equal(past[list(FEATURES)], full.loc[past.index, list(FEATURES)])


def test_phases_without_an_end_time_are_counted_not_used():
    phases = pd.DataFrame([phase("a", T0, T0), phase("a", T0, None)])
    result = training_set(phases)
    assert len(result.rows) == 1 and result.dropped == {NO_END_TIME: 1}


def test_an_empty_table_gives_an_empty_training_set_with_every_column():
    result = training_set(pd.DataFrame([phase("a", T0, T0)]).iloc[:0])
    assert result.rows.empty and set(FEATURES) <= set(result.rows.columns) and result.latest_event is None
