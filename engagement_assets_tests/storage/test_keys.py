"""Partition keys: every learner id or drop name has a safe key it can be read back from, two different ids
never share a key or a file, and object keys that would escape their folder are refused."""

from __future__ import annotations

import random

import pytest

from engagement_assets import learner_id, learner_key
from engagement_assets.storage.keys import (
    MAX_SEGMENT_BYTES,
    UnsafePartitionKey,
    check_partition_key,
    key_of,
    object_key_problem,
    storage_segment,
    text_of_key,
)

SAFE = [
    "4829163057",
    "all_telemetry_part1.json",
    "drop-2025-06-12.jsonl.gz",
    "emis_user@tn",
    "அ-learner",
    "a..b",
    "victim.parquet",
    "with space",
    "x" * 300,
    "%2F",
]
UNSAFE = [
    "",
    ".",
    "..",
    "../../etc/passwd",
    "1234567/7654321",
    "a\\b",
    ".hidden",
    "tab\there",
    "nul\x00",
    "zero\u200bwidth",
    "line\u2028break",
    "a...b",
    "a,b",
    "~starts-with-marker",
    "~",
    "ü/ö",
]


@pytest.mark.parametrize("text", SAFE)
def test_a_safe_id_is_its_own_key(text):
    assert learner_key(text) == text
    assert learner_id(text) == text


@pytest.mark.parametrize("text", UNSAFE)
def test_an_unsafe_id_is_encoded_and_read_back(text):
    key = learner_key(text)
    assert key != text and key.startswith("~")
    assert set(key[1:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-%")
    assert learner_id(key) == text
    assert check_partition_key(key) == key


def test_a_buddy_login_reads_well_as_a_key():
    assert learner_key("1234567/7654321") == "~1234567%2F7654321"


def test_keys_are_injective_and_never_collide_with_safe_ids():
    rng = random.Random(12)
    alphabet = "ab~%./\\\x00\u200b-_அ"
    texts = {"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(20_000)}
    texts |= {key_of(text) for text in list(texts)}  # keys are texts too: their own keys must differ
    keys = {}
    for text in texts:
        key = key_of(text)
        assert keys.setdefault(key, text) == text, f"{text!r} and {keys[key]!r} share key {key!r}"
        assert text_of_key(key) == text


@pytest.mark.parametrize(
    "bogus", ["1234567/7654321", "~%2f", "~%ZZ", "~a%2", "~%C3", "~a.b", "~abc", "nul\x00", "..."]
)
def test_a_string_no_id_encodes_to_is_not_a_key(bogus):
    with pytest.raises(ValueError):
        text_of_key(bogus)
    with pytest.raises(UnsafePartitionKey, match="cannot be stored"):
        check_partition_key(bogus, "users")


def test_storage_segments_stay_short_and_distinct():
    short = learner_key("1234567/7654321")
    assert storage_segment(short) == short
    long_ids = ["x" * 300, "x" * 299 + "y", "அ" * 70, "1/" * 150]
    segments = {storage_segment(learner_key(text)) for text in long_ids}
    assert len(segments) == len(long_ids)
    for segment in segments:
        assert segment.startswith("~~") and len(segment.encode()) <= MAX_SEGMENT_BYTES
    # No key starts with "~~", so a digest segment is never some other key's own segment.
    assert not learner_key("~~x").startswith("~~")


def test_segments_of_file_and_folder_names_do_not_block_each_other():
    assert storage_segment(learner_key("victim.parquet")) == "victim.parquet"
    assert storage_segment(learner_key("victim")) == "victim"


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
        ("a/" + "x" * 300 + ".wav", "longer than"),
    ],
)
def test_object_keys_that_escape_are_refused(key, why):
    assert why in object_key_problem(key)
