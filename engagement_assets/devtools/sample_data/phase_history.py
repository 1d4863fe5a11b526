"""Generated phase-level engagement histories with a known cause of stopping, for the prediction tests,
benchmarks and demos: with `planted=True` learners whose accuracy or engagement falls over recent phases
stop sooner; with `planted=False` every phase has the same chance of being the last, whatever happened in
it (so no feature can predict stopping)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engagement_assets.features.phases import FEATURE_COLUMNS, PHASE_ORDER

PHASES = tuple(PHASE_ORDER)
START = pd.Timestamp("2025-01-06")
BASE_STOP_LOG_ODDS = -2.4


def phase_history(learners: int, seed: int = 0, planted: bool = True, days: int = 120) -> pd.DataFrame:
    """Phase features of `learners` learners over `days` days, in the phase-level engagement table's
    columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(learners):
        rows += _learner(rng, f"{9_000_000_000 + number}", planted, START + pd.Timedelta(days=days))
    frame = pd.DataFrame(rows)
    for name in ("start_time", "end_time", "first_response_at"):  # as the pipeline stores them: to the ms
        frame[name] = frame[name].dt.round("ms")
    frame["gap_to_next_mins"] = (
        frame.groupby("UserId")["start_time"].shift(-1) - frame["end_time"]
    ).dt.total_seconds() / 60
    return frame.reindex(columns=list(FEATURE_COLUMNS))


def stop_chance(accuracy_change: float, engagement_change: float, planted: bool) -> float:
    """The chance that a phase is the learner's last: falling accuracy or engagement raise it."""
    if not planted:
        return 1 / (1 + np.exp(-BASE_STOP_LOG_ODDS))
    log_odds = BASE_STOP_LOG_ODDS - 0.2 * min(accuracy_change, 0) - 0.15 * min(engagement_change, 0)
    return 1 / (1 + np.exp(-log_odds))


def _learner(rng, user: str, planted: bool, end: pd.Timestamp) -> list[dict]:
    when = START + pd.Timedelta(hours=float(rng.uniform(0, 24 * 80)))
    accuracy, engagement = rng.normal(72, 8), rng.normal(65, 8)
    slope_accuracy, slope_engagement = rng.normal(0, 5), rng.normal(0, 4)
    history: list[tuple[float, float]] = []
    rows, session = [], 0
    while when < end:
        accuracy = float(np.clip(accuracy + slope_accuracy + rng.normal(0, 3), 0, 100))
        engagement = float(np.clip(engagement + slope_engagement + rng.normal(0, 3), 0, 100))
        history.append((accuracy, engagement))
        session += int(rng.random() < 0.5) or not rows
        rows.append(_phase(rng, user, session, len(rows), when, accuracy, engagement))
        earlier = history[-3] if len(history) >= 3 else history[0]
        if rng.random() < stop_chance(accuracy - earlier[0], engagement - earlier[1], planted):
            break
        when = rows[-1]["end_time"] + pd.Timedelta(hours=float(rng.exponential(30)))
    return rows


def _phase(rng, user, session, number, when, accuracy, engagement) -> dict:
    minutes = float(rng.uniform(5, 30))
    eq = float(np.clip(rng.normal(engagement, 6), 0, 100))
    return {
        "UserId": user,
        "SessionId": f"{user}-s{session}",
        "MilestoneLevel": f"m{1 + number // len(PHASES)}",
        "Phase": PHASES[number % len(PHASES)],
        "start_time": when,
        "end_time": when + pd.Timedelta(minutes=minutes),
        "session_duration_mins": minutes,
        "num_responses": int(rng.integers(4, 16)),
        "avg_accuracy": accuracy,
        "avg_EQ": eq,
        "avg_Engagement": engagement,
        "EQ_Accuracy_Score": 0.6 * eq + 0.4 * accuracy,
        "dominant_emotion": "calmness",
        "engagement_state": _state(engagement),
        "pronunciation_accuracy": "good" if accuracy >= 70 else "average",
        "audio_quality": "good" if rng.random() > 0.1 else "poor",
        "first_response_at": when + pd.Timedelta(minutes=1),
        "active_mins": minutes - 1,
    }


def _state(engagement: float) -> str:
    return "engaged" if engagement >= 60 else "neutral" if engagement >= 40 else "disengaged"
