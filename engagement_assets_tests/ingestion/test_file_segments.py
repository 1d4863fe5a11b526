"""Segments of a local uncompressed file name their byte range and are read by whoever parses them: the
records, their locations and the cleaning report are the same as from the same bytes streamed."""

from __future__ import annotations

import gzip
import io
import json
import os

import pytest

from engagement_assets.ingestion.cleaning import clean_drop
from engagement_assets.ingestion.records import Segment, iter_records, iter_segments

from .test_cleaning import response

ROWS = [response(f"m{i}", f"{1_000_000_000 + i % 7}", 5_000 + i) for i in range(60)]
BROKEN = b'{"events": {"eid": "RESPONSE", "ets": 17'

LAYOUTS = {
    "jsonl": b"\n".join(
        [
            *(json.dumps(row).encode() for row in ROWS[:30]),
            BROKEN,
            *(json.dumps(row).encode() for row in ROWS[30:]),
        ]
    ),
    "array-pretty": json.dumps(ROWS, indent=2).encode(),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_file_is_cut_into_ranges_that_read_back_as_the_streamed_records(tmp_path, layout):
    path = tmp_path / "drop"
    path.write_bytes(LAYOUTS[layout])
    with open(path, "rb") as stream:
        segments = list(iter_segments(stream, "drop", size=2_000))
    assert len(segments) > 3
    assert all(isinstance(s, Segment) and s.path == os.path.abspath(path) and s.data == b"" for s in segments)
    # An array's segments start after its opening bracket.
    assert b"".join(segment.content() for segment in segments) == LAYOUTS[layout][segments[0].base :]
    with open(path, "rb") as stream:
        from_file = list(iter_records(stream, "drop"))
    assert from_file == list(iter_records(io.BytesIO(LAYOUTS[layout]), "drop"))


def test_a_gzip_file_is_carried_in_its_segments(tmp_path):
    path = tmp_path / "drop.jsonl.gz"
    path.write_bytes(gzip.compress(LAYOUTS["jsonl"]))
    with open(path, "rb") as stream:
        segments = list(iter_segments(stream, "drop", size=2_000))
    assert all(segment.path is None for segment in segments)
    assert b"".join(segment.data for segment in segments) == LAYOUTS["jsonl"]


@pytest.mark.parametrize("workers", [1, 2])
def test_cleaning_a_file_reports_what_cleaning_its_stream_does(tmp_path, workers):
    path = tmp_path / "drop.jsonl"
    path.write_bytes(LAYOUTS["jsonl"])
    with open(path, "rb") as stream:
        _, from_file, file_quarantine, _ = clean_drop(
            stream, "drop.jsonl", tmp_path / "file", 25, workers, segment_bytes=2_000
        )
    _, streamed, stream_quarantine, _ = clean_drop(
        io.BytesIO(LAYOUTS["jsonl"]), "drop.jsonl", tmp_path / "stream", 25, workers, segment_bytes=2_000
    )
    assert from_file == streamed
    assert (from_file.records, from_file.kept, dict(from_file.quarantined)) == (60, 60, {"malformed_json": 1})
    assert file_quarantine.read_bytes() == stream_quarantine.read_bytes()
    assert b'"line 31"' in file_quarantine.read_bytes()
