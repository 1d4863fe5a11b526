"""A drop of damaged exports, one kind of damage per file, with good rows around the damage.

Stage 1 must count and quarantine the damage and keep the good rows; the truth records exactly the good
rows that can be read back.
"""

from __future__ import annotations

import gzip
import random
import zlib

from .jsonfmt import COMPASS, compact
from .landing import Landing
from .practice import PlantedEvent
from .rows import MONGO_CANONICAL, MONGO_RELAXED, MYSQL
from .telemetry import FileSpec

BAD_LINE = "malformed_bad_line.jsonl"
INVALID_UTF8 = "malformed_invalid_utf8.jsonl"
TRUNCATED_ARRAY = "malformed_truncated_array.json"
GARBAGE_GZIP = "malformed_garbage.jsonl.gz"
TRUNCATED_GZIP = "malformed_truncated_stream.jsonl.gz"
FILE_NOTES = {
    BAD_LINE: "one line is a row cut off mid-way (invalid JSON)",
    INVALID_UTF8: "one line holds invalid UTF-8 bytes (a cut multi-byte character, then 0xFF 0xFE)",
    TRUNCATED_ARRAY: "the JSON array's last document is cut off and the closing bracket is missing",
    GARBAGE_GZIP: "a valid gzip header followed by bytes that are not a deflate stream",
    TRUNCATED_GZIP: "a gzip stream cut short; only the rows before the cut can be read",
}
# The first bytes of a gzip member: magic, deflate, no flags, mtime 0, no extra flags, OS unknown.
_GZIP_HEADER = bytes.fromhex("1f8b0800000000000003")


def plant_malformed_drop(landing: Landing, planted: list[PlantedEvent], rng: random.Random) -> None:
    events = [p for p in planted if p.event["eid"] in ("RESPONSE", "IMPRESSION", "INTERACT")]
    share = max(3, len(events) // 4)
    _bad_json_line(landing, events[:share])
    _invalid_utf8_line(landing, events[share : 2 * share])
    _truncated_array(landing, events[2 * share : 3 * share])
    _garbage_gzip(landing, rng)
    _truncated_gzip(landing, events[3 * share :])


def _open(landing: Landing, name: str, *, array: bool = False, compressed: bool = False):
    file = landing.open_file(FileSpec(name, COMPASS if array else None, compressed))
    landing.extra_files.append(file)
    return file


def _bad_json_line(landing: Landing, events: list[PlantedEvent]) -> None:
    file = _open(landing, BAD_LINE)
    rows = landing.single_rows(MONGO_RELAXED, events)
    middle = len(rows) // 2
    for row in rows[:middle]:
        file.add(row)
    broken = compact(rows[middle])
    file.add_raw(broken[: len(broken) // 2] + "\n")  # a JSON prefix never parses
    file.malformed += 1
    for row in rows[middle + 1 :]:
        file.add(row)
    file.close()
    landing.keep_truth(file, events[:middle] + events[middle + 1 :])


def _invalid_utf8_line(landing: Landing, events: list[PlantedEvent]) -> None:
    file = _open(landing, INVALID_UTF8)
    rows = landing.single_rows(MYSQL, events)
    middle = len(rows) // 2
    for row in rows[:middle]:
        file.add(row)
    text = compact(rows[middle]).encode()
    # Cut inside the row, then half a Tamil letter and bytes that never occur in UTF-8: broken however decoded.
    file.add_raw(text[: len(text) // 2] + b"\xe0\xae" + b"\xff\xfe" + b"\n")
    file.malformed += 1
    for row in rows[middle + 1 :]:
        file.add(row)
    file.close()
    landing.keep_truth(file, events[:middle] + events[middle + 1 :])


def _truncated_array(landing: Landing, events: list[PlantedEvent]) -> None:
    file = _open(landing, TRUNCATED_ARRAY, array=True)
    rows = landing.single_rows(MONGO_CANONICAL, events)
    for row in rows[:-1]:
        file.add(row)
    tail = COMPASS.separator + COMPASS.document(rows[-1])
    file.add_raw(tail[: len(tail) * 2 // 3])
    file.malformed += 1
    file.close(closing=False)
    landing.keep_truth(file, events[:-1])


def _garbage_gzip(landing: Landing, rng: random.Random) -> None:
    file = _open(landing, GARBAGE_GZIP)
    # Byte 0xFF opens a deflate block of the reserved type 3, so decompression fails at once.
    file.add_raw(_GZIP_HEADER + b"\xff" + rng.randbytes(2_048))
    file.malformed += 1
    file.close()


def _truncated_gzip(landing: Landing, events: list[PlantedEvent]) -> None:
    file = _open(landing, TRUNCATED_GZIP)
    rows = landing.single_rows(MONGO_RELAXED, events)
    lines = [compact(row) + "\n" for row in rows]
    whole = gzip.compress("".join(lines).encode(), compresslevel=6, mtime=0)
    cut = whole[: len(whole) * 3 // 5]
    readable = zlib.decompressobj(wbits=31).decompress(cut).decode("utf-8", errors="ignore")
    complete = readable.count("\n")  # rows whose whole line survives the cut
    file.add_raw(cut)
    file.records = complete
    file.malformed += 1
    file.close()
    landing.keep_truth(file, events[:complete])
