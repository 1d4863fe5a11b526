"""MongoDB extended JSON values as plain Python values, and timestamps as epoch milliseconds.

Exports come in relaxed, canonical (every number wrapped) and legacy forms, so every value the pipeline
reads goes through `unwrap` first.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def unwrap(value):
    """`{"$numberLong": "5"}` -> 5, `{"$oid": "ab"}` -> "ab", `{"$date": …}` -> epoch ms; others unchanged."""
    if type(value) is not dict or len(value) != 1:
        return value
    key, inner = next(iter(value.items()))
    convert = _WRAPPERS.get(key)
    if convert is None:
        return value
    try:
        return convert(inner)
    except (TypeError, ValueError, OverflowError):
        return None


# Times every tool on the way can hold (pandas counts nanoseconds in 64 bits): about 1677 to 2262. A time
# outside them is as unreadable as a word where a time should be.
EARLIEST_MS = -(2**63) // 1_000_000 + 1
LATEST_MS = (2**63 - 1) // 1_000_000


def epoch_ms(value) -> int | None:
    """Epoch milliseconds from a `$date` (any form), a number, a digit string or an ISO-8601 string; None
    when there is none, or it lies outside EARLIEST_MS..LATEST_MS."""
    if type(value) is int:
        return value if EARLIEST_MS <= value <= LATEST_MS else None
    value = unwrap(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if EARLIEST_MS <= value <= LATEST_MS else None
    if isinstance(value, float):
        return epoch_ms(int(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        ms = _ms_from_text(value.strip())
        return ms if ms is None or EARLIEST_MS <= ms <= LATEST_MS else None
    return None


def number(value) -> float | None:
    """A finite float from a number or numeric string (wrapped or not); None for anything else."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    value = unwrap(value)
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _ms_from_text(text: str) -> int | None:
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // _ONE_MS


def _date(inner) -> int | None:
    return epoch_ms(inner)


_WRAPPERS = {
    "$numberLong": int,
    "$numberInt": int,
    "$numberDouble": float,
    "$numberDecimal": float,
    "$oid": str,
    "$date": _date,
}
