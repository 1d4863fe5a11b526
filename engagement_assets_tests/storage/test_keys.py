"""Partition keys that could escape their folder are refused with a clear message."""

from __future__ import annotations

import pytest

from engagement_assets.storage.keys import UnsafePartitionKey, check_partition_key, is_safe_partition_key


@pytest.mark.parametrize(
    "key",
    [
        "4829163057",
        "all_telemetry_part1.json",
        "drop-2025-06-12.jsonl.gz",
        "emis_user@tn",
        "அ-learner",
        "a..b",
    ],
)
def test_ordinary_keys_pass(key):
    assert check_partition_key(key) == key


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "empty"),
        ("..", "starts with '.'"),
        ("../../etc/passwd", "path separator"),
        ("1234567/7654321", "path separator"),
        ("a\\b", "path separator"),
        (".hidden", "starts with '.'"),
        ("tab\there", "control"),
        ("nul\x00", "control"),
        ("zero\u200bwidth", "control"),
        ("x" * 201, "longer than"),
    ],
)
def test_unsafe_keys_are_rejected(key, why):
    assert not is_safe_partition_key(key)
    with pytest.raises(UnsafePartitionKey, match=why):
        check_partition_key(key, "users")
