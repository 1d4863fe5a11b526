"""Stream the top-level records out of a telemetry export, whatever its framing.

An export is a JSON array (compact or pretty-printed) or JSONL, optionally gzip-compressed; the framing is
detected from the content, not the file name. Records are located on bytes and parsed one at a time with
orjson, so memory stays bounded by one read block plus one record whatever the file size, and a broken
record costs only itself: it comes out as a `Malformed` item (kept for quarantine), never as an exception
that loses the rest of the drop.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import orjson

BLOCK_SIZE = 8 << 20
# Segments are what one worker parses at a time: big enough to amortise shipping, small enough to keep
# every worker busy and memory low.
SEGMENT_BYTES = 4 << 20
# A fast framing guess longer than this is not tried: in a single-line array the "line" is the whole file.
MAX_FAST_RECORD = 1 << 20
# ALL's storage rows are a few KB; a record this large is not one of them.
MAX_RECORD_BYTES = 16 << 20
QUOTED_BYTES = 1024
TOO_FAR = -2
GZIP_MAGIC = b"\x1f\x8b"
# Compressed bytes fed to zlib per call: on damage zlib discards that call's output, so this bounds the loss.
GZIP_INPUT_SLICE = 64 << 10
UTF8_BOM = b"\xef\xbb\xbf"

# Finding where a value ends: outside strings, everything up to the next bracket, whole strings included
# (so brackets inside them are skipped); inside a string that the buffer does not hold whole, up to its
# closing quote. Possessive quantifiers: the engine never backtracks, so each byte is looked at once.
_FLAT = re.compile(rb'(?:[^"{}\[\]]++|"(?:[^"\\]++|\\.)*+")*+', re.DOTALL)
_STRING_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
_SCALAR = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[^,\[\]{}\s]+', re.DOTALL)
_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_SEPARATORS = re.compile(rb"[ \t\r\n,]*")
_OPENERS = frozenset(b"{[")
_QUOTE = ord('"')


class NotJsonError(ValueError):
    """The file does not start like JSON or JSONL at all."""


class _CorruptGzip(Exception):
    pass


@dataclass(frozen=True)
class Malformed:
    """A record that could not be parsed; `raw` holds its exact bytes for the quarantine file."""

    reason: str  # malformed_json | invalid_utf8 | duplicate_key | truncated_tail | corrupt_gzip | oversized
    location: str
    raw: bytes


@dataclass(frozen=True)
class Segment:
    """Whole records cut from an export at record boundaries, parseable on their own (in another process
    too): `segment_records` turns it back into records. A segment of a local uncompressed file names its
    byte range instead of carrying it, so that a worker process reads its own bytes: shipping them through
    a pipe costs the cleaning process, which every worker waits on, more than reading them."""

    layout: str  # "jsonl" or "array"
    data: bytes  # b"" when `path` is set
    base: int  # stream offset of data[0]
    first_line: int  # lines of the stream before data[0]
    final: bool
    error: str | None = None  # the gzip stream broke right after this segment
    path: str | None = None  # the file holding bytes [base, base + length)
    length: int = 0

    def content(self) -> bytes:
        if self.path is None:
            return self.data
        with open(self.path, "rb") as file:
            file.seek(self.base)
            return file.read(self.length)


def iter_records(stream: BinaryIO, name: str) -> Iterator[dict | Malformed]:
    """Yield every top-level record of an export as a dict, or a `Malformed` item in its place."""
    for item in iter_segments(stream, name):
        if isinstance(item, Segment):
            yield from segment_records(item)
        else:
            yield item


def iter_segments(
    stream: BinaryIO, name: str, size: int = SEGMENT_BYTES
) -> Iterator[Segment | dict | Malformed]:
    """Cut an export into Segments of about `size` bytes. JSONL is cut at line ends and pretty-printed
    arrays where a top-level element closes (the indentation of the first element says where). Layouts
    with no safe cut point (a compact single-line array, concatenated pretty objects) are streamed record
    by record instead: then the items are the records themselves."""
    path = _plain_file(stream)
    buffer = _Buffer(_decoded_blocks(stream))
    buffer.fill()
    if buffer.data.startswith(UTF8_BOM):
        buffer.pos = len(UTF8_BOM)
    buffer.skip(_WHITESPACE)
    if buffer.at_end():
        if buffer.error:
            yield buffer.tail()
        return
    first = buffer.data[buffer.pos]
    if first == ord("["):
        buffer.pos += 1
        marker = _element_end_marker(buffer)
        if marker:
            yield from _cut(buffer, "array", marker, size, path)
        else:
            yield from _array_records(buffer)
    elif first == ord("{"):
        if _looks_like_jsonl(buffer):
            yield from _cut(buffer, "jsonl", b"\n", size, path)
        else:
            yield from _framed_values(buffer, _WHITESPACE, closing=None)
    else:
        preview = bytes(buffer.data[buffer.pos : buffer.pos + 40])
        raise NotJsonError(
            f"{name}: not a JSON array or JSONL export (starts with {preview!r}); "
            "expected '[' or '{' after optional whitespace, optionally gzip-compressed"
        )


def _plain_file(stream: BinaryIO) -> str | None:
    """The path of `stream` if it is an uncompressed regular file read from its start, else None."""
    path = getattr(stream, "name", None)
    if not isinstance(path, str) or not os.path.isfile(path) or not stream.seekable() or stream.tell():
        return None
    magic = stream.read(len(GZIP_MAGIC))
    stream.seek(0)
    # Absolute: a worker process may not share the reader's working directory.
    return None if magic == GZIP_MAGIC else os.path.abspath(path)


def segment_records(segment: Segment) -> Iterator[dict | Malformed]:
    buffer = _Buffer(_segment_blocks(segment))
    buffer.base = segment.base
    if segment.layout == "jsonl":
        yield from _jsonl_records(buffer, segment.first_line)
    else:
        yield from _framed_values(buffer, _SEPARATORS, closing=ord("]") if segment.final else None)


def _segment_blocks(segment: Segment) -> Iterator[bytes]:
    yield segment.content()
    if segment.error:
        raise _CorruptGzip(segment.error)


def _element_end_marker(buffer: _Buffer) -> bytes | None:
    """Where top-level elements end, if the array's layout says so: at each newline when the first
    element sits on one line, or at a line holding only `}` at the first element's indentation."""
    buffer.skip(_SEPARATORS)
    buffer.ensure(MAX_FAST_RECORD)
    start = buffer.pos
    if start >= len(buffer.data) or buffer.data[start] != ord("{"):
        return None
    indent = _indent_before(buffer.data, start)
    for marker, end in ((b"\n", _same_line_end(buffer.data, start)), (b"\n" + indent + b"}", None)):
        if end is None:
            found = buffer.data.find(marker, start, start + MAX_FAST_RECORD)
            end = found + len(marker) if found >= 0 else None
        if end is not None and _parse_clean(buffer.data[start:end]) is not None:
            return marker
    return None


def _cut(buffer: _Buffer, layout: str, marker: bytes, size: int, path: str | None) -> Iterator[Segment]:
    line = 0
    while True:
        buffer.ensure(size + 1)
        cut = -1
        if not buffer.eof or len(buffer.data) - buffer.pos > size:
            cut = buffer.data.rfind(marker, buffer.pos, buffer.pos + size)
            if cut < 0:  # a record longer than a segment: cut after it, unless it is beyond any record
                cut = buffer.search(marker, buffer.pos + size, limit=MAX_RECORD_BYTES)
        if cut == TOO_FAR:
            line += 1
            yield _passed_oversized(
                buffer, marker, f"line {line}" if layout == "jsonl" else buffer.location()
            )
            continue
        final = cut < 0
        end = len(buffer.data) if final else cut + len(marker)
        start, base = buffer.pos, buffer.base + buffer.pos
        error = buffer.error if final else None
        if path is None:
            yield Segment(layout, bytes(buffer.data[start:end]), base, line, final, error)
        else:
            yield Segment(layout, b"", base, line, final, error, path, end - start)
        if final:
            return
        if layout == "jsonl":  # only JSONL reports locations as line numbers
            line += buffer.data.count(b"\n", start, end)
        buffer.pos = end


def _decoded_blocks(stream: BinaryIO) -> Iterator[bytes]:
    raw = iter(lambda: stream.read(BLOCK_SIZE), b"")
    first = next(raw, b"")
    if first.startswith(GZIP_MAGIC):
        yield from _gunzip(itertools.chain([first], raw))
    elif first:
        yield first
        yield from raw


def _gunzip(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress (possibly multi-member) gzip in bounded blocks; any damage raises _CorruptGzip."""
    decoder, fed = zlib.decompressobj(wbits=31), False
    for piece in _slices(blocks, GZIP_INPUT_SLICE):
        pending, out = piece, b""
        while pending or len(out) == BLOCK_SIZE:
            fed = True
            try:
                out = decoder.decompress(pending, BLOCK_SIZE)
            except zlib.error as err:
                raise _CorruptGzip(str(err)) from None
            if out:
                yield out
            pending = decoder.unconsumed_tail
            if decoder.eof:
                # Members may be concatenated (and zero-padded); a new one starts right after.
                pending = decoder.unused_data.lstrip(b"\x00")
                decoder, fed = zlib.decompressobj(wbits=31), False
    if fed:
        raise _CorruptGzip("the gzip stream ends before its end marker")


def _slices(blocks: Iterable[bytes], size: int) -> Iterator[bytes]:
    for block in blocks:
        for start in range(0, len(block), size):
            yield block[start : start + size]


class _Buffer:
    """A sliding window over the decoded stream; `pos` is the read position within `data`."""

    def __init__(self, blocks: Iterator[bytes]):
        self._blocks = blocks
        self.data = b""
        self.pos = 0
        self.base = 0  # stream offset of data[0]
        self.eof = False
        self.error: str | None = None

    def fill(self) -> bool:
        """Append one more block; False at the end of the stream (or where it broke)."""
        if self.eof:
            return False
        try:
            block = next(self._blocks)
        except StopIteration:
            self.eof = True
            return False
        except _CorruptGzip as err:
            self.eof, self.error = True, str(err)
            return False
        if self.pos >= len(self.data):  # nothing pending: the block is the window, uncopied
            self.base += len(self.data)
            self.data, self.pos = block, 0
            return True
        if self.pos > len(self.data) // 2:
            self.base += self.pos
            self.data, self.pos = self.data[self.pos :], 0
        if type(self.data) is bytes:
            # A record spans blocks: append in place from now on, so a long one is never copied whole
            # again per block.
            self.data = bytearray(self.data)
        self.data += block
        return True

    def search(self, marker: bytes, start: int, last: bool = False, limit: int | None = None) -> int:
        """Index in `data` of `marker` at or after index `start` (the first one, or with `last` the last
        in the window), reading blocks until there is one; -1 at the end of the stream, TOO_FAR once more
        than `limit` bytes past the read position hold none. Each byte is searched once, however many
        blocks it takes."""
        while True:
            found = self.data.rfind(marker, start) if last else self.data.find(marker, start)
            if found >= 0:
                return found
            if limit is not None and len(self.data) - self.pos > limit:
                return TOO_FAR
            resume = self.base + max(start, len(self.data) - len(marker) + 1)
            if not self.fill():
                return -1
            start = resume - self.base

    def discard_through(self, marker: bytes) -> int:
        """Moves the read position past the next `marker` (or to the end of the stream) without holding
        what it passes: how many bytes before the marker were passed."""
        passed = 0
        while True:
            found = self.data.find(marker, self.pos)
            if found >= 0:
                passed += found - self.pos
                self.pos = found + len(marker)
                return passed
            keep = max(self.pos, len(self.data) - len(marker) + 1)  # a marker may span two blocks
            passed += keep - self.pos
            self.drop_before(keep)
            if not self.fill():
                passed += len(self.data) - self.pos
                self.pos = len(self.data)
                return passed

    def drop_before(self, index: int) -> None:
        """Forgets `data` before `index`, which becomes the read position."""
        self.base += index
        self.data, self.pos = bytes(self.data[index:]), 0

    def ensure(self, lookahead: int = BLOCK_SIZE // 2) -> None:
        while len(self.data) - self.pos < lookahead and self.fill():
            pass

    def skip(self, pattern: re.Pattern) -> None:
        while True:
            self.pos = pattern.match(self.data, self.pos).end()
            if self.pos < len(self.data) or not self.fill():
                return

    def at_end(self) -> bool:
        self.ensure(1)
        return self.pos >= len(self.data)

    def location(self, pos: int | None = None) -> str:
        return f"byte {self.base + (self.pos if pos is None else pos)}"

    def tail(self) -> Malformed | None:
        """What is left when the stream ends mid-record, as a quarantine item."""
        rest = bytes(self.data[self.pos :])
        self.pos = len(self.data)
        if self.error:
            return Malformed(
                "corrupt_gzip", f"{self.location()} ({self.error}); the rest is unreadable", rest
            )
        if rest.strip():
            return Malformed("truncated_tail", self.location(), rest)
        return None


def _oversized(location: str, head: bytes, size: int, complete: bool = True) -> Malformed:
    # Not parsed: its objects would take many times its size. Quarantined by its first bytes.
    ends = "" if complete else "; the stream ends inside it"
    return Malformed(
        "oversized", f"{location} ({size:,} bytes; the first {QUOTED_BYTES:,} are kept{ends})", head
    )


def _passed_oversized(buffer: _Buffer, marker: bytes, location: str) -> Malformed:
    """The record at the read position, longer than any record may be, passed over up to `marker`."""
    head = bytes(buffer.data[buffer.pos : buffer.pos + QUOTED_BYTES])
    return _oversized(location, head, buffer.discard_through(marker))


def _parse(raw: bytes, location: str) -> dict | Malformed:
    if len(raw) > MAX_RECORD_BYTES:
        return _oversized(location, bytes(raw[:QUOTED_BYTES]), len(raw))
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Malformed(_failure_reason(raw), location, bytes(raw))
    if isinstance(value, dict):
        return _duplicate_key(raw, location) if repeats_key(raw, value) else value
    return Malformed("malformed_json", f"{location} (a {type(value).__name__}, not an object)", bytes(raw))


def repeats_key(raw: bytes, record: dict) -> bool:
    """Whether the record's JSON, or the JSON string in its `events` (MySQL exports), repeats a key in
    one object: orjson keeps the last value of a repeated key without a word, so a row with two `events`
    would lose one, uncounted. The exact check is slow, so it only runs when the bytes hold more event
    contexts than the row carries events (a list of N events holds N legitimately)."""
    contexts = raw.count(WATCHED_KEY)
    if contexts <= 1:
        return False
    events = record.get("events")
    if contexts <= _events_carried(events):
        return False
    return _has_repeated_key(raw) or (type(events) is str and _has_repeated_key(events))


# Every event stage 1 can keep has a context, so a second event hidden under a repeated `events`, or
# merged into one object, brings a second one. Only this key is counted: each pass over the bytes costs
# about a fifth of the orjson parse. Without its closing quote the needle also finds the key escaped
# inside an `events` string.
WATCHED_KEY = b'"context'


def _events_carried(events) -> int:
    if type(events) is str:  # only rows that look like a batch get here: parsing the string twice is rare
        try:
            events = orjson.loads(events)
        except orjson.JSONDecodeError:
            return 1
    return len(events) if type(events) is list else 1


class _RepeatedKey(Exception):
    pass


def _has_repeated_key(text: bytes | str) -> bool:
    try:
        json.loads(text, object_pairs_hook=_unique_keys)
    except _RepeatedKey:
        return True
    except ValueError:  # a JSON string that does not parse is events_of's to report
        return False
    return False


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise _RepeatedKey
    return value


def _duplicate_key(raw: bytes, location: str) -> Malformed:
    return Malformed("duplicate_key", f"{location} (a key repeated in one object)", bytes(raw))


def _failure_reason(raw: bytes) -> str:
    try:
        bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    return "malformed_json"


def _looks_like_jsonl(buffer: _Buffer, sample_lines: int = 8) -> bool:
    buffer.ensure(MAX_FAST_RECORD)
    # The first line is judged whole: cut short, it would not look like a record. Beyond any record's size
    # it is one oversized line of a JSONL file (quarantined as such), not a reason to hold the file whole.
    if buffer.search(b"\n", buffer.pos, limit=MAX_RECORD_BYTES) == TOO_FAR:
        return True
    lines = [line.strip() for line in buffer.data[buffer.pos :].split(b"\n", sample_lines)[:sample_lines]]
    lines = [line for line in lines if line]
    complete = sum(line.startswith(b"{") and line.endswith(b"}") for line in lines)
    return complete * 2 >= len(lines)


def _jsonl_records(buffer: _Buffer, line_number: int = 0) -> Iterator[dict | Malformed]:
    while True:
        buffer.ensure()
        end = buffer.search(b"\n", buffer.pos, last=True)
        last = end < 0
        stop = len(buffer.data) if last else end
        lines = buffer.data[buffer.pos : stop].split(b"\n")
        buffer.pos = stop if last else stop + 1
        broken_tail = lines.pop() if last and buffer.error else None
        for line in lines:
            line_number += 1
            if line.strip():
                yield _parse(line, f"line {line_number}")
        if last:
            if broken_tail is not None:
                yield Malformed(
                    "corrupt_gzip", f"line {line_number + 1} ({buffer.error})", bytes(broken_tail)
                )
            return


def _array_records(buffer: _Buffer) -> Iterator[dict | Malformed]:
    """An array whose elements do not end at line ends (a compact single-line array): the line-based
    guesses would search up to MAX_FAST_RECORD for every element in vain, so only the exact scan runs."""
    yield from _framed_values(buffer, _SEPARATORS, closing=ord("]"), guess=False)


def _framed_values(
    buffer: _Buffer, separators: re.Pattern, closing: int | None, guess: bool = True
) -> Iterator[dict | Malformed]:
    """Values separated by `separators`; fast framing guesses first, then an exact structural scan."""
    framer = _Framer(guess)
    while True:
        buffer.skip(separators)
        buffer.ensure()
        if buffer.pos >= len(buffer.data):
            if closing is not None or buffer.error:
                tail = buffer.tail() or Malformed("truncated_tail", buffer.location(), b"")
                yield tail
            return
        if buffer.data[buffer.pos] == closing:
            buffer.pos += 1
            buffer.skip(_WHITESPACE)
            if not buffer.at_end():
                yield Malformed(
                    "malformed_json",
                    f"{buffer.location()} (content after the array)",
                    bytes(buffer.data[buffer.pos :]),
                )
            return
        item = framer.next_value(buffer)
        if item is None:
            tail = buffer.tail()
            if tail:
                yield tail
            return
        yield item


class _Framer:
    """Finds where the next value ends, remembering which guess worked so the common case parses once."""

    def __init__(self, guess: bool = True):
        self.indent: bytes | None = None
        self.guesses = [_same_line_end, self._indented] if guess else []

    def next_value(self, buffer: _Buffer) -> dict | Malformed | None:
        start = buffer.pos
        if self.indent is None:
            self.indent = _indent_before(buffer.data, start)
        for guess in self.guesses:
            end = guess(buffer.data, start)
            if end is None:
                continue
            raw = buffer.data[start:end]
            parsed = _parse_clean(raw)
            if parsed is not None:
                if guess is not self.guesses[0]:
                    self.guesses.reverse()
                buffer.pos = end
                return _duplicate_key(raw, buffer.location(start)) if repeats_key(raw, parsed) else parsed
        return self._exact(buffer)

    def _indented(self, data: bytes, start: int) -> int | None:
        marker = b"\n" + (self.indent or b"") + b"}"
        found = data.find(marker, start, start + MAX_FAST_RECORD)
        return found + len(marker) if found >= 0 else None

    def _exact(self, buffer: _Buffer) -> dict | Malformed | None:
        if buffer.data[buffer.pos] not in _OPENERS:
            return _skip_garbage(buffer)
        scan, start = _Scan(buffer), buffer.base + buffer.pos
        head = None
        while (end := scan.end(buffer)) is None:
            if head is None and len(buffer.data) - buffer.pos > MAX_RECORD_BYTES:
                head = bytes(buffer.data[buffer.pos : buffer.pos + QUOTED_BYTES])
            if head is not None:  # too large to parse: scanned to its end, not held
                buffer.drop_before(scan.offset - buffer.base)
            if not buffer.fill():
                return None if head is None else _oversized(f"byte {start}", head, buffer.base - start, False)
        first, buffer.pos = buffer.pos, end
        if head is not None:
            return _oversized(f"byte {start}", head, buffer.base + end - start)
        return _parse(buffer.data[first:end], f"byte {start}")


def _same_line_end(data: bytes, start: int) -> int | None:
    """End of a value that starts at `start` if it closes on the same line."""
    newline = data.find(b"\n", start, start + MAX_FAST_RECORD)
    if newline < 0:
        return None
    close = data.rfind(b"}", start, newline)
    return close + 1 if close > start else None


def _parse_clean(raw: bytes) -> dict | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _indent_before(data: bytes, start: int) -> bytes:
    line_start = data.rfind(b"\n", 0, start) + 1
    prefix = data[line_start:start]
    return prefix if not prefix.strip() else b""


class _Scan:
    """Where the value starting at the buffer's read position (an opener) ends. The scan keeps its place
    (stream offset, depth, inside a string or not) when the buffer reads another block, so a record
    spanning many blocks is scanned once, not again from its start after each block."""

    def __init__(self, buffer: _Buffer):
        self.offset = buffer.base + buffer.pos
        self.depth = 0
        self.in_string = False

    def end(self, buffer: _Buffer) -> int | None:
        """Index in `buffer.data` just past the value, or None if the buffer does not hold all of it."""
        data, depth, in_string = buffer.data, self.depth, self.in_string
        pos, size = self.offset - buffer.base, len(data)
        while pos < size:
            if in_string:
                pos = _STRING_BODY.match(data, pos).end()
                if pos >= size or data[pos] != _QUOTE:  # the string, or an escape, runs past the buffer
                    break
                pos, in_string = pos + 1, False
                continue
            pos = _FLAT.match(data, pos).end()
            if pos >= size:
                break
            if data[pos] == _QUOTE:  # a string the buffer does not hold whole
                pos, in_string = pos + 1, True
                continue
            depth += 1 if data[pos] in _OPENERS else -1
            pos += 1
            if depth == 0:
                return pos
        self.offset, self.depth, self.in_string = buffer.base + pos, depth, in_string
        return None


def _skip_garbage(buffer: _Buffer) -> Malformed:
    """A scalar or stray character where a record should start: quarantine just that token."""
    start = buffer.pos
    token = _SCALAR.match(buffer.data, start)
    end = token.end() if token and token.end() > start else start + 1
    buffer.pos = end
    return Malformed(
        "malformed_json", f"{buffer.location(start)} (not an object)", bytes(buffer.data[start:end])
    )
