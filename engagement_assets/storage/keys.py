"""Partition keys become path segments, so a key that could escape its folder is refused outright."""

from __future__ import annotations

import unicodedata

MAX_KEY_LENGTH = 200


class UnsafePartitionKey(ValueError):
    pass


def check_partition_key(key: str, kind: str = "partition") -> str:
    """Return `key` if it is safe as one path segment, else raise UnsafePartitionKey saying why."""
    problem = _problem(key)
    if problem:
        raise UnsafePartitionKey(f"{kind} key {key!r} cannot be used as a storage path segment: {problem}")
    return key


def is_safe_partition_key(key: str) -> bool:
    return _problem(key) is None


def _problem(key) -> str | None:
    if not isinstance(key, str) or not key:
        return "it is empty"
    if "/" in key or "\\" in key:
        return "it contains a path separator"
    if key.startswith("."):
        return "it starts with '.' ('..' climbs out of the folder; dot-names are reserved for temp files)"
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in key):
        return "it contains a control or invisible formatting character"
    if len(key) > MAX_KEY_LENGTH:
        return f"it is longer than {MAX_KEY_LENGTH} characters"
    return None
