"""Stage 3: attach each response to the lesson-tracking row it belongs to.

Two rules (README, "Stage 3"):
- `nearest` (the original system's): the learner's lesson row whose time is nearest to the response,
  within ±5 minutes inclusive, ties to the earlier row.
- `session_forward`: a lesson row of the response's own ContentSession, the first written at or after the
  response, within 5 minutes. ALL writes a step's lesson row a few seconds after its last response, so
  this puts each response in the step it was spoken in.
Rows with equal times are taken in file order. Unmatched responses stay, with empty session columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from engagement_assets.ingestion.events import RESPONSE_SCHEMA
from engagement_assets.matching.sessions import SESSION_COLUMNS, SESSIONS_SCHEMA

NEAREST = "nearest"
SESSION_FORWARD = "session_forward"
STRATEGIES = (NEAREST, SESSION_FORWARD)
TOLERANCE = pd.Timedelta(minutes=5)

# The response columns under the original system's names, then the lesson row's.
RENAMED = {"user_id": "UserId", "created_at": "CreatedAt_Response"}
MERGED_SCHEMA = pa.schema(
    [field.with_name(RENAMED.get(field.name, field.name)) for field in RESPONSE_SCHEMA]
    + [field for field in SESSIONS_SCHEMA if field.name != "UserId"]
)
MERGED_COLUMNS = tuple(MERGED_SCHEMA.names)
UNMATCHED = -1


@dataclass(frozen=True)
class MatchResult:
    merged: pd.DataFrame
    matched: int
    unmatched: int
    placed_differently: int  # responses the other strategy would attach to another row (or leave unmatched)
    other_session: int  # matched to a lesson row of a different ContentSession than the response's own


def match_responses(
    responses: pd.DataFrame,
    sessions: pd.DataFrame,
    strategy: str = NEAREST,
    tolerance: pd.Timedelta = TOLERANCE,
) -> MatchResult:
    """Merge one learner's responses (stage 2 columns) with their lesson rows (parse_sessions columns)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown match strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    rows = {
        NEAREST: nearest_rows(responses, sessions, tolerance),
        SESSION_FORWARD: session_forward_rows(responses, sessions, tolerance),
    }
    other = SESSION_FORWARD if strategy == NEAREST else NEAREST
    chosen = rows[strategy]
    merged = _merge(responses, sessions, chosen)
    matched = int((chosen != UNMATCHED).sum())
    return MatchResult(
        merged=merged,
        matched=matched,
        unmatched=len(chosen) - matched,
        placed_differently=int((chosen != rows[other]).sum()),
        other_session=int(
            (merged["SessionId"].notna() & (merged["SessionId"] != merged["session_id"])).sum()
        ),
    )


def nearest_rows(responses: pd.DataFrame, sessions: pd.DataFrame, tolerance: pd.Timedelta) -> np.ndarray:
    """Index into `sessions` of each response's nearest lesson row within tolerance, else UNMATCHED."""
    times = _ms(responses["created_at"])
    candidates = np.flatnonzero(sessions["CreatedAt_Session"].notna().to_numpy())
    return _nearest_in(times, candidates, _ms(sessions["CreatedAt_Session"]), _ms_of(tolerance))


def session_forward_rows(
    responses: pd.DataFrame, sessions: pd.DataFrame, tolerance: pd.Timedelta
) -> np.ndarray:
    """Index of the first lesson row of the response's own session at or after it, within tolerance."""
    times = _ms(responses["created_at"])
    session_times = _ms(sessions["CreatedAt_Session"])
    chosen = np.full(len(responses), UNMATCHED, dtype=np.int64)
    response_sessions = responses["session_id"].to_numpy(dtype=object)
    lesson_sessions = sessions["SessionId"].to_numpy(dtype=object)
    for session in pd.unique(response_sessions[pd.notna(response_sessions)]):
        mine = np.flatnonzero(response_sessions == session)
        candidates = np.flatnonzero((lesson_sessions == session) & (session_times != _NAT))
        chosen[mine] = _forward_in(times[mine], candidates, session_times, _ms_of(tolerance))
    return chosen


_NAT = np.iinfo(np.int64).min
_NO_GAP = np.iinfo(np.int64).max


def _in_time_order(candidates: np.ndarray, session_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate rows sorted by time (equal times keep file order), and their times."""
    order = candidates[np.argsort(session_times[candidates], kind="stable")]
    return order, session_times[order]


def _nearest_in(
    times: np.ndarray, candidates: np.ndarray, session_times: np.ndarray, tolerance: int
) -> np.ndarray:
    chosen = np.full(len(times), UNMATCHED, dtype=np.int64)
    if not len(candidates):
        return chosen
    order, sorted_times = _in_time_order(candidates, session_times)
    before = np.searchsorted(sorted_times, times, side="right") - 1
    gap_before = np.where(before >= 0, times - sorted_times[before.clip(0)], _NO_GAP)
    after, gap_after = _first_at_or_after(sorted_times, times)
    take_before = gap_before <= gap_after
    best = np.where(take_before, before, after)
    gap = np.where(take_before, gap_before, gap_after)
    # Equal times: the first such row in file order (searchsorted "left" finds the start of the run).
    first_of_run = np.searchsorted(sorted_times, sorted_times[best.clip(0, len(order) - 1)], side="left")
    valid = (times != _NAT) & (gap <= tolerance)
    chosen[valid] = order[first_of_run[valid]]
    return chosen


def _forward_in(
    times: np.ndarray, candidates: np.ndarray, session_times: np.ndarray, tolerance: int
) -> np.ndarray:
    chosen = np.full(len(times), UNMATCHED, dtype=np.int64)
    if not len(candidates):
        return chosen
    order, sorted_times = _in_time_order(candidates, session_times)
    after, gap = _first_at_or_after(sorted_times, times)
    valid = (times != _NAT) & (gap <= tolerance)
    chosen[valid] = order[after[valid]]
    return chosen


def _first_at_or_after(sorted_times: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each time, the first lesson row at or after it and how far ahead it is (_NO_GAP: none)."""
    after = np.searchsorted(sorted_times, times, side="left")
    exists = after < len(sorted_times)
    return after, np.where(exists, sorted_times[after.clip(max=len(sorted_times) - 1)] - times, _NO_GAP)


def _merge(responses: pd.DataFrame, sessions: pd.DataFrame, chosen: np.ndarray) -> pd.DataFrame:
    merged = responses.rename(columns=RENAMED).reset_index(drop=True)
    lesson = sessions.reindex(chosen).reset_index(drop=True)  # UNMATCHED (-1) is not a label: all-null row
    for column in SESSION_COLUMNS[1:]:
        merged[column] = lesson[column].to_numpy()
    merged = merged[list(MERGED_COLUMNS)]
    merged["CreatedAt_Session"] = merged["CreatedAt_Session"].astype("datetime64[ms]")
    merged["Progress"] = merged["Progress"].astype("float64")
    return merged


def _ms(values: pd.Series) -> np.ndarray:
    return values.astype("datetime64[ms]").to_numpy().astype(np.int64)


def _ms_of(delta: pd.Timedelta) -> int:
    return int(delta / pd.Timedelta(milliseconds=1))
