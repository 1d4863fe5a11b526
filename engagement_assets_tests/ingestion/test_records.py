"""Framing of telemetry exports: every layout real exporters produce, and every way a file can be broken."""

from __future__ import annotations

import gzip
import io
import json

import pytest

from engagement_assets.ingestion import records
from engagement_assets.ingestion.records import (
    Malformed,
    NotJsonError,
    Segment,
    iter_records,
    iter_segments,
    segment_records,
)

ROWS = [
    {"_id": {"$oid": f"{i:024x}"}, "events": {"eid": "RESPONSE", "mid": f"RESPONSE:{i}", "text": 'a}b{c"]'}}
    for i in range(25)
]


def parse(data: bytes) -> list:
    return list(iter_records(io.BytesIO(data), "drop.json"))


def ok(items: list) -> list:
    return [item for item in items if not isinstance(item, Malformed)]


def bad(items: list) -> list[Malformed]:
    return [item for item in items if isinstance(item, Malformed)]


LAYOUTS = {
    "jsonl": "\n".join(json.dumps(row) for row in ROWS).encode(),
    "jsonl-crlf-blank-lines": ("\r\n\r\n".join(json.dumps(row) for row in ROWS) + "\r\n").encode(),
    "array-compact-one-line": json.dumps(ROWS).encode(),
    "array-one-per-line": ("[\n" + ",\n".join(json.dumps(row) for row in ROWS) + "\n]").encode(),
    "array-pretty-indent-1": json.dumps(ROWS, indent=1).encode(),
    "array-pretty-indent-4": json.dumps(ROWS, indent=4).encode(),
    "array-pretty-tabs": json.dumps(ROWS, indent="\t").encode(),
    "concatenated-pretty-objects": "\n".join(json.dumps(row, indent=2) for row in ROWS).encode(),
    "bom-and-leading-whitespace": b"\xef\xbb\xbf \n\t" + json.dumps(ROWS).encode(),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_every_layout_yields_every_record(layout, compress):
    data = LAYOUTS[layout]
    items = parse(gzip.compress(data) if compress else data)
    assert items == ROWS


def test_records_larger_than_the_read_block(monkeypatch):
    monkeypatch.setattr(records, "BLOCK_SIZE", 64)
    monkeypatch.setattr(records, "GZIP_INPUT_SLICE", 16)
    for data in (LAYOUTS["array-compact-one-line"], LAYOUTS["array-pretty-indent-1"], LAYOUTS["jsonl"]):
        assert parse(data) == ROWS
        assert parse(gzip.compress(data)) == ROWS


def test_multi_member_gzip_is_read_to_the_end():
    data = LAYOUTS["jsonl"]
    assert parse(gzip.compress(data[:300]) + gzip.compress(data[300:])) == ROWS


def test_empty_files_have_no_records():
    assert parse(b"") == []
    assert parse(b"  \n ") == []
    assert parse(b"[]") == []
    assert parse(gzip.compress(b"")) == []


def test_a_file_that_is_not_json_fails_naming_the_file():
    with pytest.raises(NotJsonError, match=r"drop\.json: not a JSON array or JSONL export"):
        parse(b"id,user\n1,2\n")


def test_bad_jsonl_lines_are_quarantined_and_the_rest_kept():
    lines = [json.dumps(row).encode() for row in ROWS[:3]]
    data = b"\n".join(
        [lines[0], b'{"eid": "RESPONSE", "ets": 17', lines[1], b'{"x": "\xff\xfe"}', b"oops", lines[2]]
    )
    items = parse(data)
    assert ok(items) == ROWS[:3]
    assert [(item.reason, item.location) for item in bad(items)] == [
        ("malformed_json", "line 2"),
        ("invalid_utf8", "line 4"),
        ("malformed_json", "line 5"),
    ]
    assert bad(items)[1].raw == b'{"x": "\xff\xfe"}'


@pytest.mark.parametrize("layout", ["array-compact-one-line", "array-pretty-indent-1", "array-one-per-line"])
def test_truncated_array_tail_is_quarantined_with_its_bytes(layout):
    data = LAYOUTS[layout]
    cut = data.index(b"RESPONSE:20")
    items = parse(data[:cut])
    assert ok(items) == ROWS[:20]
    (tail,) = bad(items)
    assert tail.reason == "truncated_tail"
    assert data[:cut].endswith(tail.raw)


def test_array_without_closing_bracket_is_reported():
    items = parse(json.dumps(ROWS)[:-1].encode())
    assert ok(items) == ROWS
    assert [item.reason for item in bad(items)] == ["truncated_tail"]


def test_invalid_utf8_inside_an_array_costs_one_record():
    rows = [json.dumps(row).encode() for row in ROWS[:3]]
    data = b"[" + b",".join([rows[0], b'{"text": "caf\xe9"}', rows[1], rows[2]]) + b"]"
    items = parse(data)
    assert ok(items) == ROWS[:3]
    assert [item.reason for item in bad(items)] == ["invalid_utf8"]


def test_non_object_elements_are_quarantined():
    items = parse(b'[{"a": 1}, 42, "x", {"b": 2}]')
    assert ok(items) == [{"a": 1}, {"b": 2}]
    assert len(bad(items)) == 2


def test_content_after_the_array_is_quarantined():
    items = parse(b'[{"a": 1}] trailing')
    assert ok(items) == [{"a": 1}]
    assert bad(items)[0].raw == b"trailing"


def test_truncated_gzip_keeps_what_was_readable_and_reports_the_break():
    compressed = gzip.compress(LAYOUTS["jsonl"] * 40)
    items = parse(compressed[: len(compressed) // 2])
    assert len(ok(items)) > 0
    assert bad(items)[-1].reason == "corrupt_gzip"


def test_corrupt_gzip_header_is_reported_not_raised():
    compressed = bytearray(gzip.compress(LAYOUTS["jsonl"]))
    compressed[3] = 0xFF  # reserved flag bits set: zlib refuses the header
    compressed[10:40] = b"\x00" * 30
    items = parse(bytes(compressed))
    assert [item.reason for item in bad(items)] == ["corrupt_gzip"]


@pytest.mark.parametrize(
    "layout", ["jsonl", "array-one-per-line", "array-pretty-indent-1", "array-pretty-tabs"]
)
@pytest.mark.parametrize("size", [50, 700, 10_000])
def test_segments_cut_at_record_boundaries_and_reassemble(layout, size):
    data = LAYOUTS[layout]
    items = list(iter_segments(io.BytesIO(data), "d", size=size))
    segments = [item for item in items if isinstance(item, Segment)]
    assert segments == items and segments[-1].final and not any(s.final for s in segments[:-1])
    assert b"".join(segment.data for segment in segments) == data[data.index(segments[0].data[:1]) :]
    assert [record for segment in segments for record in segment_records(segment)] == ROWS
    if size == 50:
        assert len(segments) >= len(ROWS)  # every record is longer than a segment: one (at least) each


def test_layouts_without_safe_cuts_are_streamed_record_by_record():
    for layout in ("array-compact-one-line", "concatenated-pretty-objects"):
        items = list(iter_segments(io.BytesIO(LAYOUTS[layout]), "d", size=100))
        assert items == ROWS


def test_malformed_records_keep_their_stream_location_across_segments():
    lines = [json.dumps(row).encode() for row in ROWS[:6]]
    lines[4] = b'{"broken": '
    segments = list(iter_segments(io.BytesIO(b"\n".join(lines)), "d", size=200))
    bad_items = [
        item for segment in segments for item in segment_records(segment) if isinstance(item, Malformed)
    ]
    assert [(item.reason, item.location) for item in bad_items] == [("malformed_json", "line 5")]
    pretty = json.dumps(ROWS[:6], indent=1).encode()
    cut = pretty.index(b'"RESPONSE:4"')
    broken = pretty[:cut] + b"oops" + pretty[cut:]
    segments = list(iter_segments(io.BytesIO(broken), "d", size=300))
    (item,) = [i for s in segments for i in segment_records(s) if isinstance(i, Malformed)]
    element_start = broken.rindex(b"\n {", 0, cut) + 2
    assert item.location == f"byte {element_start}"


EVENT = {"eid": "RESPONSE", "mid": "RESPONSE:1", "context": {"cdata": [{"id": "en", "type": "language"}]}}
OTHER = {"eid": "LOG", "mid": "LOG:2", "context": {"cdata": []}}


def repeated_events_row(indent=None) -> bytes:
    first, second = json.dumps(EVENT, indent=indent), json.dumps(OTHER, indent=indent)
    return f'{{"_id": {{"$oid": "{"a" * 24}"}}, "events": {first}, "events": {second}}}'.encode()


def reasons(items: list) -> list[str]:
    return [item.reason for item in bad(items)]


def test_a_repeated_events_key_in_jsonl_is_a_duplicate_key_item():
    row = repeated_events_row()
    items = parse(b"\n".join([json.dumps(ROWS[0]).encode(), row, json.dumps(ROWS[1]).encode()]))
    assert ok(items) == ROWS[:2]
    (item,) = bad(items)
    assert (item.reason, item.raw) == ("duplicate_key", row)
    assert item.location.startswith("line 2")


@pytest.mark.parametrize("indent", [None, 2], ids=["one-per-line", "pretty"])
def test_a_repeated_events_key_in_an_array_is_a_duplicate_key_item(indent):
    row = repeated_events_row(indent).decode()
    good = [json.dumps(r, indent=indent) for r in ROWS[:3]]
    data = ("[\n" + ",\n".join([good[0], row, *good[1:]]) + "\n]").encode()
    items = parse(data)
    assert ok(items) == ROWS[:3]
    assert reasons(items) == ["duplicate_key"]
    assert bad(items)[0].raw == row.encode()


def test_a_repeated_events_key_in_a_compact_array_is_a_duplicate_key_item():
    data = b"[" + repeated_events_row() + b"," + json.dumps(ROWS[0]).encode() + b"]"
    assert reasons(parse(data)) == ["duplicate_key"]
    assert ok(parse(data)) == ROWS[:1]


@pytest.mark.parametrize(
    "event",
    [
        '{"eid": "RESPONSE", "context": {"cdata": []}, "edata": {"values": [], "values": [{"x": 1}]}}',
        '{"eid": "RESPONSE", "context": {"cdata": [], "cdata": [{"id": "en", "type": "language"}]}}',
        '{"eid": "RESPONSE", "context": {"cdata": [{"id": "en", "type": "language", "type": "User"}]}}',
    ],
    ids=["values-in-edata", "cdata-in-context", "type-in-a-cdata-entry"],
)
def test_a_key_repeated_deep_inside_is_found_once_the_record_is_suspect(event):
    row = f'{{"events": [{event}, {json.dumps(OTHER)}], "events": {json.dumps(EVENT)}}}'.encode()
    assert records.repeats_key(row, json.loads(row))
    nested_only = f'{{"events": {event}}}'.encode()
    assert records._has_repeated_key(nested_only)


def test_a_list_of_events_repeats_event_keys_legitimately():
    row = {"_id": {"$oid": "b" * 24}, "events": [EVENT, OTHER, EVENT]}
    data = json.dumps(row).encode()
    assert parse(data + b"\n" + data) == [row, row]
    as_string = {"id": 7, "events": json.dumps([EVENT, OTHER])}
    assert parse(json.dumps(as_string).encode()) == [as_string]


def test_a_repeated_key_inside_a_mysql_events_string_is_a_duplicate_key_item():
    event = json.dumps(EVENT)[:-1] + ', "context": {"cdata": []}}'
    row = json.dumps({"id": 7, "api_id": "api.sunbird.telemetry", "events": event}).encode()
    items = parse(json.dumps(ROWS[0]).encode() + b"\n" + row)
    assert ok(items) == ROWS[:1]
    assert reasons(items) == ["duplicate_key"]
    assert bad(items)[0].raw == row


def test_a_repeated_key_outside_the_watched_ones_is_not_looked_for():
    """The byte count gates the exact check: a repeat of a key it does not count passes (orjson's last
    value wins), which is the price of keeping the check off the per-record cost."""
    row = b'{"events": {"eid": "RESPONSE", "mid": "a", "mid": "b"}}'
    assert parse(row) == [{"events": {"eid": "RESPONSE", "mid": "b"}}]
