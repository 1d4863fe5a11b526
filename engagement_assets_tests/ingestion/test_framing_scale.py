"""Framing stays linear in the size of a record: a record spanning many read blocks is scanned once, not
again from its start after every block; a JSONL file is JSONL whatever the length of its first line.

Work is counted, never timed: every regular expression framing uses is wrapped to add up the bytes its
matches cover, with small read blocks so that a record spans many of them. The records are larger than
the look-ahead the readers keep (half a default block), or they would be read whole before any scan.
"""

from __future__ import annotations

import io
import json
import re

import orjson
import pytest

from engagement_assets.ingestion import records
from engagement_assets.ingestion.records import Malformed, Segment, iter_records, iter_segments

BLOCK = 64 << 10
LARGE = 6 << 20  # more than the 4 MB look-ahead


class CountingPattern:
    """A compiled pattern that adds up how many bytes its matches cover."""

    def __init__(self, pattern: re.Pattern, tally: list[int]):
        self.pattern, self.tally = pattern, tally

    def match(self, data, pos=0, *rest):
        found = self.pattern.match(data, pos, *rest)
        if found:
            self.tally[0] += found.end() - pos
        return found

    def search(self, data, pos=0, *rest):
        found = self.pattern.search(data, pos, *rest)
        if found:
            self.tally[0] += found.end() - pos
        return found

    def finditer(self, data, pos=0, *rest):
        previous = pos
        for found in self.pattern.finditer(data, pos, *rest):
            self.tally[0] += found.end() - previous
            previous = found.end()
            yield found

    def __getattr__(self, name):
        return getattr(self.pattern, name)


@pytest.fixture
def scanned(monkeypatch) -> list[int]:
    """Small read blocks, and the bytes covered by every framing pattern (tally[0])."""
    tally = [0]
    monkeypatch.setattr(records, "BLOCK_SIZE", BLOCK)
    for name, value in vars(records).items():
        if isinstance(value, re.Pattern):
            monkeypatch.setattr(records, name, CountingPattern(value, tally))
    return tally


def big_record(size: int) -> dict:
    """Nested objects and lists whose strings hold brackets, quotes and escapes, about `size` bytes."""
    text = 'a\\"b}{[' * 90
    fields = {f"k{i}": {"v": text, "list": [i, "]"]} for i in range(size // 1000)}
    return {"events": {"eid": "RESPONSE", "edata": fields}}


def test_a_large_record_in_a_compact_array_is_scanned_once(scanned):
    record = big_record(LARGE)
    data = b"[" + orjson.dumps(record) + b"," + orjson.dumps({"small": 1}) + b"]"
    assert list(iter_records(io.BytesIO(data), "drop.json")) == [record, {"small": 1}]
    # A scan that starts again after each block past the look-ahead covers ~30 times the record.
    assert scanned[0] <= 3 * len(data)


def test_a_large_record_among_concatenated_pretty_objects_is_scanned_once(scanned):
    record = big_record(LARGE)
    data = json.dumps(record).encode() + b"\n" + json.dumps({"small": 1}, indent=2).encode()
    assert list(iter_records(io.BytesIO(data), "drop.json")) == [record, {"small": 1}]
    assert scanned[0] <= 3 * len(data)


def test_a_compact_array_of_many_records_is_scanned_once(scanned):
    rows = [{"n": i, "t": "a}b{c", "nested": {"x": [i]}} for i in range(20_000)]
    data = json.dumps(rows).encode()
    assert list(iter_records(io.BytesIO(data), "drop.json")) == rows
    assert scanned[0] <= 3 * len(data)


def test_a_string_split_at_a_block_boundary_in_every_position_is_framed_exactly(monkeypatch):
    monkeypatch.setattr(records, "BLOCK_SIZE", 7)
    rows = [{"s": 'q"\\x}]\\\\', "n": [{"a": "\\u00e9"}]}, {"s": "\\"}, {"e": ""}]
    data = json.dumps(rows).encode()
    for shift in range(8):  # moves every escape and quote across the block boundaries
        padded = b" " * shift + data
        assert list(iter_records(io.BytesIO(padded), "drop.json")) == rows


def test_jsonl_whose_first_line_exceeds_a_megabyte_is_jsonl(monkeypatch):
    monkeypatch.setattr(records, "BLOCK_SIZE", BLOCK)
    first = {"events": {"eid": "IMPRESSION", "blob": "x" * (3 * records.MAX_FAST_RECORD)}}
    lines = [orjson.dumps(first), orjson.dumps({"n": 2}), b'{"broken": ', orjson.dumps({"n": 4})]
    items = list(iter_segments(io.BytesIO(b"\n".join(lines)), "drop.jsonl", size=1 << 20))
    assert items and all(isinstance(item, Segment) and item.layout == "jsonl" for item in items)
    parsed = list(iter_records(io.BytesIO(b"\n".join(lines)), "drop.jsonl"))
    assert parsed[:2] == [first, {"n": 2}] and parsed[3] == {"n": 4}
    assert isinstance(parsed[2], Malformed) and parsed[2].location == "line 3"


def test_a_jsonl_record_longer_than_many_segments_is_one_segment(monkeypatch):
    monkeypatch.setattr(records, "BLOCK_SIZE", BLOCK)
    long_line = orjson.dumps({"blob": "y" * (50 * BLOCK)})
    lines = [orjson.dumps({"n": 1}), long_line, orjson.dumps({"n": 3})]
    segments = list(iter_segments(io.BytesIO(b"\n".join(lines)), "drop.jsonl", size=2 * BLOCK))
    assert [segment.data.count(b"\n") for segment in segments[:-1]] == [1, 1]
    assert long_line + b"\n" in [segment.data for segment in segments] or any(
        segment.data.endswith(long_line + b"\n") for segment in segments
    )
    assert b"".join(segment.data for segment in segments) == b"\n".join(lines)
