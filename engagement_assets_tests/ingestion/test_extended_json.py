"""MongoDB extended JSON unwrapping and timestamp parsing."""

from __future__ import annotations

import pytest

from engagement_assets.ingestion.extended_json import epoch_ms, number, unwrap

MS = 1749723825123


@pytest.mark.parametrize(
    "value",
    [
        {"$date": "2025-06-12T10:23:45.123Z"},
        {"$date": {"$numberLong": str(MS)}},
        {"$date": MS},
        {"$numberLong": str(MS)},
        MS,
        float(MS),
        str(MS),
        "2025-06-12T10:23:45.123+00:00",
        "2025-06-12T15:53:45.123+05:30",
        "2025-06-12 10:23:45.123",
        "2025-06-12T10:23:45.123456Z",
    ],
)
def test_every_timestamp_form_is_the_same_instant(value):
    assert epoch_ms(value) == MS


@pytest.mark.parametrize(
    "value", [None, True, "not a date", {"$date": "garbage"}, [], {"a": 1}, float("nan")]
)
def test_unparseable_timestamps_are_none(value):
    assert epoch_ms(value) is None


def test_unwrap_canonical_numbers_and_ids():
    assert unwrap({"$numberInt": "3"}) == 3
    assert unwrap({"$numberLong": "9007199254740993"}) == 9007199254740993
    assert unwrap({"$numberDouble": "86.36363636363636"}) == 86.36363636363636
    assert unwrap({"$oid": "684aaab1c3b1f24e8a0d9f12"}) == "684aaab1c3b1f24e8a0d9f12"
    assert unwrap({"$numberInt": "x"}) is None
    assert unwrap({"plain": 1}) == {"plain": 1}
    assert unwrap("text") == "text"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(86.5, 86.5), (100, 100.0), ({"$numberDouble": "0"}, 0.0), ("42.5", 42.5), ({"$numberInt": "7"}, 7.0)],
)
def test_numbers(value, expected):
    assert number(value) == expected


@pytest.mark.parametrize(
    "value", [None, True, "", "abc", {"$numberDouble": "NaN"}, {"$numberDouble": "Infinity"}, [1]]
)
def test_non_numbers(value):
    assert number(value) is None
