"""Keys become paths: a partition key is one path segment, an object key (an audio link) a relative path.
A key that could escape its folder is refused outright, never written through."""

from __future__ import annotations

import unicodedata

MAX_KEY_LENGTH = 200
_INVISIBLE = ("Cc", "Cf", "Zl", "Zp")


class UnsafePartitionKey(ValueError):
    pass


def check_partition_key(key: str, kind: str = "partition") -> str:
    """Return `key` if it is safe as one path segment, else raise UnsafePartitionKey saying why."""
    problem = _segment_problem(key)
    if problem:
        raise UnsafePartitionKey(f"{kind} key {key!r} cannot be used as a storage path segment: {problem}")
    return key


def is_safe_partition_key(key: str) -> bool:
    return _segment_problem(key) is None


def object_key_problem(key) -> str | None:
    """Why an object key (segments joined by '/') would escape the folder it is copied under, or None."""
    if not isinstance(key, str) or not key:
        return "it is empty"
    if key.startswith("/"):
        return "it is an absolute path"
    for segment in key.split("/"):
        problem = _segment_problem(segment, max_length=1024)
        if problem:
            return f"segment {segment!r}: {problem}"
    return None


def _segment_problem(key, max_length: int = MAX_KEY_LENGTH) -> str | None:
    if not isinstance(key, str) or not key:
        return "it is empty"
    if "/" in key or "\\" in key:
        return "it contains a path separator"
    if key.startswith("."):
        return "it starts with '.' ('..' climbs out of the folder; dot-names are reserved for temp files)"
    if any(unicodedata.category(char) in _INVISIBLE for char in key):
        return "it contains a control or invisible formatting character"
    if len(key) > max_length:
        return f"it is longer than {max_length} characters"
    return None


def daily_hive_folder(base: str, day: str) -> str:
    """`<base>/year=YYYY/month=MM/day=DD` for a day key `YYYY-MM-DD`: the layout query engines prune by."""
    year, month, day_of_month = day.split("-")
    return f"{base}/year={year}/month={month}/day={day_of_month}"
