"""NocoDB rows as typed tables: the two tables' fields, DateTime strings parsed to UTC, and rows that cannot
be used set aside with a reason instead of being dropped silently."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import pyarrow as pa

CONVERSATION_FIELDS = (
    "conversation_id",
    "user_id",
    "channel",
    "language",
    "started_at",
    "ended_at",
    "status",
)
MESSAGE_FIELDS = (
    "message_id",
    "conversation_id",
    "user_id",
    "role",
    "text",
    "language",
    "translated_text",
    "sent_at",
    # Where the base has them: the assistant model (or agent) that wrote a reply, and the learner's rating of it.
    "model",
    "rating",
)
# NocoDB's system fields: the row id the incremental cursor follows, and its own change times. The id and
# update-time fields are configurable (NOCODB_ID_FIELD, NOCODB_UPDATED_FIELD); rows arrive with them under
# these names.
ID, UPDATED = "Id", "UpdatedAt"
SYSTEM_FIELDS = (ID, "CreatedAt", UPDATED)
REQUIRED = {
    "conversations": ("Id", "conversation_id", "started_at"),
    "messages": ("Id", "message_id", "conversation_id", "sent_at"),
}
TIMES = {"conversations": ("started_at", "ended_at"), "messages": ("sent_at",)}
FIELDS = {"conversations": CONVERSATION_FIELDS, "messages": MESSAGE_FIELDS}
# One unit for every day: pandas infers one per batch from the strings; microseconds hold them all exactly.
TIMESTAMP = pa.timestamp("us")
# The times a row may carry: what every library on the way (pandas at nanoseconds included) can hold. A
# year-9999 placeholder or a mistyped year is this row's problem, never the sync's.
EARLIEST = pd.Timestamp("1900-01-01")
LATEST = pd.Timestamp("2262-04-11")
QUOTED_CHARS = 2000


def record_schema(table: str) -> pa.Schema:
    """The Arrow columns of `parse_rows(table, ...).rows`, which every table built from them starts with."""

    def arrow_type(name: str) -> pa.DataType:
        return pa.int64() if name == "Id" else TIMESTAMP if name in _times(table) else pa.string()

    return pa.schema([(name, arrow_type(name)) for name in (*SYSTEM_FIELDS, *FIELDS[table])])


@dataclass
class Parsed:
    rows: pd.DataFrame
    rejected: pd.DataFrame
    reasons: Counter = field(default_factory=Counter)


def parse_rows(table: str, raw: list[dict]) -> Parsed:
    """Typed rows of `conversations` or `messages`; rows missing a required field, with an unreadable time
    or a time outside what can be stored (EARLIEST to LATEST) go to `rejected` with the reason."""
    fields = FIELDS[table]
    source = pd.DataFrame(raw, columns=[*SYSTEM_FIELDS, *fields])
    frame = source.assign(Id=row_ids(source["Id"]))
    for column in _times(table):
        frame[column] = to_utc(source[column])
    for column in fields:
        if column not in TIMES[table]:
            frame[column] = texts(source[column])
    reason = pd.Series(pd.NA, index=frame.index, dtype="string")
    for column in _times(table):
        outside = frame[column].notna() & ~frame[column].between(EARLIEST, LATEST, inclusive="left")
        reason = reason.mask(reason.isna() & outside, f"{column} out of range")
    for column in REQUIRED[table]:
        absent = source[column].isna() | (texts(source[column]).str.strip() == "")
        unreadable = ~absent & frame[column].isna()
        reason = reason.mask(reason.isna() & absent, f"missing {column}")
        reason = reason.mask(reason.isna() & unreadable, f"unreadable {column}")
    bad = reason.notna()
    rejected = pd.DataFrame(
        {
            "table": table,
            "Id": frame.loc[bad, "Id"].to_numpy(),
            "reason": reason[bad].to_numpy(),
            "row": [_quoted(row) for row, is_bad in zip(raw, bad, strict=True) if is_bad],
        }
    )
    return Parsed(rows=frame[~bad].reset_index(drop=True), rejected=rejected, reasons=Counter(reason[bad]))


def _quoted(row: dict) -> str:
    """A rejected row as it came, up to QUOTED_CHARS: enough to find it in NocoDB, never a huge copy."""
    text = repr(row)
    return text if len(text) <= QUOTED_CHARS else f"{text[:QUOTED_CHARS]}… ({len(text):,} characters)"


def row_ids(values: pd.Series) -> pd.Series:
    """NocoDB row ids as Int64: whole numbers from 0 to the int64 maximum; anything else (text, a float,
    a bool, a number no cursor can hold) → NA, which the required-field check then reports."""
    return pd.Series([_row_id(value) for value in values], index=values.index, dtype="Int64")


def _row_id(value) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():  # a column with gaps holds its ids as floats
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    return None


def texts(values: pd.Series) -> pd.Series:
    """Text fields as strings: a number or a structure where text belongs is kept as its JSON text, and
    characters UTF-8 cannot hold (lone surrogates from a JSON escape) become U+FFFD."""
    return pd.Series([_text(value) for value in values], index=values.index, dtype="string")


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return _utf8(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str))


def _utf8(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def to_utc(values: pd.Series) -> pd.Series:
    """NocoDB's `YYYY-MM-DD HH:MM:SS+00:00` (or ISO with any offset) as tz-naive UTC; unreadable (or not
    text at all) → NaT, which the required-field check then reports."""
    readable = [
        _utf8(value) if isinstance(value, str) else value if isinstance(value, datetime) else None
        for value in values
    ]
    return pd.to_datetime(
        pd.Series(readable, index=values.index, dtype=object), utc=True, errors="coerce", format="mixed"
    ).dt.tz_localize(None)


def latest_versions(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per key: the most recently changed version (NocoDB's UpdatedAt, else CreatedAt, then Id)."""
    changed = frame["UpdatedAt"].fillna(frame["CreatedAt"])
    ordered = frame.assign(_changed=changed).sort_values(
        ["_changed", "Id"], na_position="first", kind="stable"
    )
    return (
        ordered.drop_duplicates(key, keep="last")
        .drop(columns="_changed")
        .sort_values(key)
        .reset_index(drop=True)
    )


def _times(table: str) -> tuple[str, ...]:
    """NocoDB's change times and the table's own DateTime fields."""
    return ("CreatedAt", "UpdatedAt", *TIMES[table])
