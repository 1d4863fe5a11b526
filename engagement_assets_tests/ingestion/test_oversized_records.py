"""A record larger than any ALL row costs only itself, and never its size in memory: it is passed over
and quarantined by its first bytes, in every layout, compressed or not, whether or not the stream ends
inside it. Memory is measured with tracemalloc (allocations, not time), with the record limit lowered so
the records are many times the limit and the read blocks small."""

from __future__ import annotations

import io
import json
import tracemalloc
import zlib

import pytest

from engagement_assets.ingestion import records
from engagement_assets.ingestion.records import Malformed, iter_records

LIMIT = 1 << 20
HUGE = 48 << 20
# Held at most: the limit, one segment (4 MB) and a few read blocks, far below the record.
MEMORY_BOUND = 12 << 20


@pytest.fixture(autouse=True)
def small_limits(monkeypatch):
    monkeypatch.setattr(records, "MAX_RECORD_BYTES", LIMIT)
    monkeypatch.setattr(records, "BLOCK_SIZE", 256 << 10)


def record(mid: str) -> bytes:
    return json.dumps({"mid": mid, "edata": {"type": "SPEAK"}}).encode()


def gzipped(*pieces: bytes | int) -> bytes:
    """A gzip stream of the pieces; an int is that many bytes of a JSON string's body, never held whole."""
    packer = zlib.compressobj(wbits=31)
    out = []
    for piece in pieces:
        if isinstance(piece, int):
            chunk = b"x" * (1 << 20)
            for _ in range(piece // len(chunk)):
                out.append(packer.compress(chunk))
        else:
            out.append(packer.compress(piece))
    out.append(packer.flush())
    return b"".join(out)


def framed(stream) -> tuple[list, int]:
    """The items and the peak memory allocated while framing them."""
    tracemalloc.start()
    try:
        items = list(iter_records(stream, "drop"))
        return items, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


HUGE_OBJECT = (b'{"mid": "big", "padding": "', HUGE, b'"}')
LAYOUTS = {
    "jsonl, huge line in the middle": (record("a") + b"\n", *HUGE_OBJECT, b"\n" + record("b") + b"\n"),
    "jsonl, huge first line": (*HUGE_OBJECT, b"\n" + record("a") + b"\n" + record("b") + b"\n"),
    "array, one element per line": (
        b"[\n" + record("a") + b",\n",
        *HUGE_OBJECT,
        b",\n" + record("b") + b"\n]",
    ),
    "compact array": (b"[" + record("a") + b",", *HUGE_OBJECT, b"," + record("b") + b"]"),
    "concatenated pretty objects": (b'{\n  "mid": "a"\n}\n', *HUGE_OBJECT, b'\n{\n  "mid": "b"\n}\n'),
}


@pytest.mark.parametrize("pieces", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_a_huge_record_is_passed_over_with_its_neighbours_kept(pieces):
    items, peak = framed(io.BytesIO(gzipped(*pieces)))
    kept = [item["mid"] for item in items if isinstance(item, dict)]
    (oversized,) = [item for item in items if isinstance(item, Malformed)]
    assert sorted(kept) == ["a", "b"]
    assert oversized.reason == "oversized" and oversized.raw.startswith(b'{"mid": "big"')
    assert len(oversized.raw) == records.QUOTED_BYTES and f"{HUGE:,}"[:4] in oversized.location
    assert peak < MEMORY_BOUND


def test_a_huge_line_of_a_plain_file_is_passed_over(tmp_path):
    path = tmp_path / "drop.jsonl"
    with open(path, "wb") as out:
        out.write(record("a") + b"\n")
        out.write(b'{"mid": "big", "padding": "')
        for _ in range(HUGE >> 20):
            out.write(b"x" * (1 << 20))
        out.write(b'"}\n' + record("b") + b"\n")
    with open(path, "rb") as stream:
        items, peak = framed(stream)
    assert [item["mid"] for item in items if isinstance(item, dict)] == ["a", "b"]
    assert [item.reason for item in items if isinstance(item, Malformed)] == ["oversized"]
    assert peak < MEMORY_BOUND


@pytest.mark.parametrize("opening", [b"", b"["], ids=["jsonl", "compact array"])
def test_a_stream_that_ends_inside_a_huge_record_says_so(opening):
    pieces = (opening + record("a") + (b"\n" if not opening else b","), b'{"mid": "big", "p": "', HUGE)
    items, peak = framed(io.BytesIO(gzipped(*pieces)))
    assert [item["mid"] for item in items if isinstance(item, dict)] == ["a"]
    reasons = [item.reason for item in items if isinstance(item, Malformed)]
    assert reasons[0] == "oversized" and peak < MEMORY_BOUND
