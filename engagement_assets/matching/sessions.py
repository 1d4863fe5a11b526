"""The lesson-tracking export of one learner (`<user_id>_learnerai_data.csv`) as typed rows.

Only the columns the pipeline uses are read; timestamps with `Z` or an offset are converted to UTC, naive
ones are taken as UTC, and the zone is dropped (README, "Stage 3").
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa

from engagement_assets.errors import describe
from engagement_assets.storage import layout
from engagement_assets.storage.columns import column
from engagement_assets.storage.keys import key_of

REQUIRED_COLUMNS = ("userId", "sessionId", "milestoneLevel", "lesson", "progress", "createdAt")
SESSIONS_SCHEMA = pa.schema(
    [
        column("UserId", pa.string(), "the learner id"),
        column("SessionId", pa.string(), "the lesson row's session (the app's ContentSession)"),
        column("MilestoneLevel", pa.string(), "the learner's level, m1…m15"),
        column("Lesson", pa.string(), "practice step index after this save, 0-9"),
        column(
            "Progress", pa.float64(), "10…90 or 0: names the phase (P1…P8, S1, S2); other values name none"
        ),
        column("CreatedAt_Session", pa.timestamp("ms"), "when the lesson row was saved (UTC)"),
    ]
)
SESSION_COLUMNS = tuple(SESSIONS_SCHEMA.names)


class SessionsFileError(ValueError):
    pass


def sessions_key(user_id: str) -> str:
    """Where the landing area holds a learner id's export: `sessions/<learner key>_learnerai_data.csv`."""
    return layout.sessions_key(key_of(user_id))


def empty_sessions() -> pd.DataFrame:
    return _typed(pd.DataFrame({column: [] for column in SESSION_COLUMNS}))


def parse_sessions(data: bytes, source: str) -> pd.DataFrame:
    """Typed lesson rows, in file order; a missing required column is an error naming it and the file."""
    try:
        raw = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        return empty_sessions()
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise SessionsFileError(f"{source}: not a readable CSV ({describe(err)})") from None
    missing = [column for column in REQUIRED_COLUMNS if column not in raw.columns]
    if missing:
        raise SessionsFileError(
            f"{source}: missing required column(s) {', '.join(missing)} (has: {_named(raw.columns)})"
        )
    renamed = raw[list(REQUIRED_COLUMNS)].set_axis(list(SESSION_COLUMNS), axis=1)
    return _typed(renamed, source)


def _named(columns, shown: int = 12, longest: int = 40) -> str:
    """The file's column names as an error may quote them: a few, each short and escaped (the header is the
    file's own text)."""
    names = [repr(str(name)[:longest]) for name in list(columns)[:shown]]
    return ", ".join(names) + (f", … ({len(columns)} in all)" if len(columns) > shown else "")


def _typed(frame: pd.DataFrame, source: str = "") -> pd.DataFrame:
    typed = frame.copy()
    for name in ("UserId", "SessionId", "MilestoneLevel", "Lesson"):
        typed[name] = typed[name].astype("string").str.strip().replace("", pd.NA).astype("str")
    typed["Progress"] = pd.to_numeric(typed["Progress"].replace("", None), errors="coerce").astype("float64")
    typed["CreatedAt_Session"] = _utc_naive(typed["CreatedAt_Session"], source)
    return typed.reset_index(drop=True)


def _utc_naive(values: pd.Series, source: str) -> pd.Series:
    text = values.astype("string").str.strip().replace("", pd.NA)
    try:
        parsed = pd.to_datetime(text, utc=True, format="ISO8601")
    except (ValueError, TypeError) as err:
        raise SessionsFileError(f"{source}: createdAt has a value that is not a timestamp ({err})") from None
    return parsed.dt.tz_convert(None).astype("datetime64[ms]")
