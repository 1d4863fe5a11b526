"""Partition keys that could escape their folder are refused with a clear message."""

from __future__ import annotations

import pytest

from engagement_assets.storage.keys import (
    UnsafePartitionKey,
    check_partition_key,
    is_safe_partition_key,
    object_key_problem,
)


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


@pytest.mark.parametrize(
    "key", ["learner-ai-demo/q7Tz0LmR3vXa9KcP2wYb8NdE5fHj1UoS-1749723822950-2.wav", "a/b/c.wav", "clip.wav"]
)
def test_ordinary_object_keys_pass(key):
    assert object_key_problem(key) is None


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("../../secrets.wav", "starts with '.'"),
        ("a/../../b.wav", "starts with '.'"),
        ("a//b.wav", "empty"),
        ("a\\..\\b.wav", "path separator"),
        ("a/\x00.wav", "control"),
    ],
)
def test_object_keys_that_escape_are_refused(key, why):
    assert why in object_key_problem(key)
