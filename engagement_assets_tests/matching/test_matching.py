"""The two matching rules: ties, tolerance edges, sessions, empty learners."""

from __future__ import annotations

import pandas as pd
import pytest

from engagement_assets.matching.matching import (
    MERGED_COLUMNS,
    NEAREST,
    SESSION_FORWARD,
    TOLERANCE,
    match_responses,
)
from engagement_assets.matching.sessions import empty_sessions

T0 = pd.Timestamp("2025-06-12 10:00:00")


def responses(*times, session="S1") -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame(
        {
            "event_mid": [f"m{i}" for i in range(n)],
            "event_ets": pd.Series([T0] * n, dtype="datetime64[ms]"),
            "user_id": ["u1"] * n,
            "user_id_source": ["virtualId"] * n,
            "session_id": [session] * n if isinstance(session, str) or session is None else session,
            "language": ["en"] * n,
            "original_text": ["x"] * n,
            "response_text": ["x"] * n,
            "accuracy_percentage": [50.0] * n,
            "audio_link": [None] * n,
            "created_at": pd.Series([T0 + pd.Timedelta(t) for t in times], dtype="datetime64[ms]"),
        }
    )


def sessions(*rows) -> pd.DataFrame:
    """rows of (offset, progress[, session])"""
    return pd.DataFrame(
        {
            "UserId": ["u1"] * len(rows),
            "SessionId": [row[2] if len(row) > 2 else "S1" for row in rows],
            "MilestoneLevel": ["m1"] * len(rows),
            "Lesson": [str(i) for i in range(len(rows))],
            "Progress": [float(row[1]) for row in rows],
            "CreatedAt_Session": pd.Series(
                [T0 + pd.Timedelta(row[0]) for row in rows], dtype="datetime64[ms]"
            ),
        }
    )


def progress_of(result) -> list:
    return result.merged["Progress"].tolist()


def test_nearest_picks_the_closest_row_either_side():
    result = match_responses(
        responses("10s", "200s"), sessions(("0s", 10), ("190s", 20), ("300s", 30)), NEAREST
    )
    assert progress_of(result) == [10.0, 20.0]


def test_nearest_tie_goes_to_the_earlier_row():
    result = match_responses(responses("60s"), sessions(("120s", 20), ("0s", 10)), NEAREST)
    assert progress_of(result) == [10.0]


def test_equal_lesson_times_take_the_first_row_in_file_order():
    result = match_responses(responses("10s"), sessions(("0s", 10), ("0s", 26)), NEAREST)
    assert progress_of(result) == [10.0]


@pytest.mark.parametrize(
    ("offset", "matched"), [("300s", True), ("-300s", True), ("300.001s", False), ("-300.001s", False)]
)
def test_tolerance_is_inclusive_to_the_millisecond(offset, matched):
    lesson = sessions(("0s", 10))
    for strategy in (NEAREST,):
        result = match_responses(responses(offset), lesson, strategy)
        assert (result.matched == 1) is matched


@pytest.mark.parametrize(
    ("offset", "matched"), [("-300s", True), ("-300.001s", False), ("0s", True), ("0.001s", False)]
)
def test_session_forward_only_looks_ahead_within_tolerance(offset, matched):
    result = match_responses(responses(offset), sessions(("0s", 10)), SESSION_FORWARD)
    assert (result.matched == 1) is matched


def test_session_forward_puts_a_steps_responses_into_that_step():
    # Step 1's lesson row is written 5 s after its last response; step 2's first response comes right after.
    lesson = sessions(("100s", 10), ("400s", 20))
    result = match_responses(responses("30s", "95s", "110s", "390s"), lesson, SESSION_FORWARD)
    assert progress_of(result) == [10.0, 10.0, 20.0, 20.0]
    nearest = match_responses(responses("30s", "95s", "110s", "390s"), lesson, NEAREST)
    assert progress_of(nearest) == [10.0, 10.0, 10.0, 20.0]
    assert nearest.placed_differently == result.placed_differently == 1


def test_session_forward_never_crosses_content_sessions():
    lesson = sessions(("10s", 10, "OTHER"), ("200s", 20, "S1"))
    assert progress_of(match_responses(responses("0s"), lesson, SESSION_FORWARD)) == [20.0]
    nearest = match_responses(responses("0s"), lesson, NEAREST)
    assert progress_of(nearest) == [10.0] and nearest.other_session == 1
    orphan = match_responses(responses("0s", session=[None]), lesson, SESSION_FORWARD)
    assert orphan.unmatched == 1


def test_unmatched_responses_stay_with_empty_session_columns():
    result = match_responses(responses("0s", "1h"), sessions(("0s", 10)), NEAREST)
    assert (result.matched, result.unmatched) == (1, 1)
    row = result.merged.iloc[1]
    assert pd.isna(row["SessionId"]) and pd.isna(row["Progress"]) and pd.isna(row["CreatedAt_Session"])
    assert row["UserId"] == "u1" and row["CreatedAt_Response"] == T0 + pd.Timedelta("1h")


def test_learner_without_sessions_or_responses():
    result = match_responses(responses("0s"), empty_sessions(), NEAREST)
    assert result.unmatched == 1 and list(result.merged.columns) == list(MERGED_COLUMNS)
    empty = match_responses(responses(), sessions(("0s", 10)), SESSION_FORWARD)
    assert empty.merged.empty and list(empty.merged.columns) == list(MERGED_COLUMNS)


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="unknown match strategy"):
        match_responses(responses("0s"), empty_sessions(), "closest")


def test_default_tolerance_is_five_minutes():
    assert pd.Timedelta(minutes=5) == TOLERANCE
