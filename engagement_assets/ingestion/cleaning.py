"""Stage 1: stream one telemetry drop into cleaned, deduplicated Parquet chunks.

Records are read in chunks of `chunk_size` input records; each chunk's responses are deduplicated on
(event_mid, event_ets) keeping the earliest created_at, sorted by learner (so per-learner reads can skip
row groups), and written as one Parquet part. Duplicates that span chunks are resolved at the end with one
DuckDB pass over the key columns, rewriting only the parts that lose rows. Memory stays bounded by one
chunk of kept rows plus one read block, whatever the drop size.
"""

from __future__ import annotations

import base64
import bisect
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from engagement_assets.ingestion import tokens
from engagement_assets.ingestion.events import DUPLICATE, RESPONSE_SCHEMA
from engagement_assets.ingestion.parsing import RowsResult, merge_attributes, rows_of, rows_of_segment
from engagement_assets.ingestion.records import SEGMENT_BYTES, Malformed, Segment, iter_segments
from engagement_assets.storage.parquet import ParquetParts

DEFAULT_CHUNK_SIZE = 200_000
# Below this size a drop is parsed in-process: starting workers costs more than it saves.
PARALLEL_MIN_BYTES = 256 << 20
MAX_WORKERS = 2
STREAMED_BATCH = 10_000
# Small row groups let a one-learner read skip most of a part using the user_id min/max statistics.
ROW_GROUP_SIZE = 8_192
# Learner attributes are merged every this many results, so a drop's stay one table per learner's combination.
ATTRIBUTE_BATCHES_KEPT = 64


_EARLIEST_FIRST = "created_at NULLS LAST"
_PARQUET_OPTIONS = f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_SIZE})"
_LEARNER_ORDER = "user_id, created_at, event_mid, event_ets"


@dataclass
class CleaningReport:
    """What happened to every record and event of a drop (the materialization metadata)."""

    records: int = 0
    events: int = 0
    kept: int = 0
    chunks: int = 0
    learners: int = 0
    dropped: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)
    # Quarantined records counted but not written, once the quarantine file reached its cap.
    quarantine_not_stored: int = 0


# The quarantine of one drop is evidence for a person to read, not a second copy of a broken export.
DEFAULT_QUARANTINE_BYTES = 64 * 1024 * 1024


class CleanedDrop(NamedTuple):
    parts: ParquetParts
    report: CleaningReport
    quarantine: Path
    # LEARNER_ATTRIBUTES_SCHEMA: what the drop's telemetry says about each learner
    attributes: pa.Table


def clean_drop(
    stream: BinaryIO,
    name: str,
    workdir: Path,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int = 1,
    segment_bytes: int = SEGMENT_BYTES,
    max_quarantine_bytes: int = DEFAULT_QUARANTINE_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> CleanedDrop:
    """Clean one drop into Parquet parts under `workdir`; returns the parts, the report, the quarantine
    file and the learners' attributes. With `workers` > 1, segments of the export are parsed in that many
    processes (results are used in file order, so the output is the same). The quarantine file holds at most `max_quarantine_bytes`;
    past that, malformed records are still counted by reason, and counted as not stored. `progress` is
    told the records read and the position in `stream` after each batch of them."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    parts = ParquetParts(workdir)
    parts.folder.mkdir(parents=True, exist_ok=True)
    quarantine_path = workdir / "quarantine.jsonl"
    report = CleaningReport()
    with (
        _duckdb(workdir) as con,
        open(quarantine_path, "wb") as quarantine_file,
        _ChunkWriter(
            con, parts, report, chunk_size, _Quarantine(quarantine_file, report, name, max_quarantine_bytes)
        ) as chunks,
    ):
        for result in _results(iter_segments(stream, name, segment_bytes), workers):
            chunks.absorb(result)
            if progress:
                progress(report.records, _position(stream))
        chunks.finish()
        _dedupe_across_parts(con, parts, report)
        report.kept, report.learners = con.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM read_parquet(?)", [[str(p) for p in parts.files]]
        ).fetchone()
    report.chunks = len(parts.files)
    parts.rows = report.kept
    return CleanedDrop(parts, report, quarantine_path, chunks.learner_attributes())


def _position(stream: BinaryIO) -> int:
    """How far into `stream` the reader is (0 when the stream cannot say)."""
    try:
        return stream.tell()
    except (AttributeError, OSError, ValueError):
        return 0


def default_workers(size_bytes: int) -> int:
    """Parser processes for a drop of this size: one per core (at most MAX_WORKERS) for big drops.
    Each worker adds about 90 MB to the ~320 MB the cleaning process itself peaks at."""
    return min(MAX_WORKERS, os.cpu_count() or 1) if size_bytes >= PARALLEL_MIN_BYTES else 1


def _results(items: Iterator[Segment | dict | Malformed], workers: int) -> Iterator[RowsResult]:
    """Rows of every record in file order: segments parsed by a process pool (or here), streamed records
    in batches."""
    streamed: list = []
    with _pool(workers) as pool:
        pending: deque[Future] = deque()
        for item in items:
            if not isinstance(item, Segment):
                streamed.append(item)
                if len(streamed) >= STREAMED_BATCH:
                    yield rows_of(streamed)
                    streamed = []
            elif pool is None:
                yield rows_of_segment(item)
            else:
                pending.append(pool.submit(rows_of_segment, item))
                # Bounded read-ahead: two segments in flight per worker keeps them busy and memory flat.
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    if streamed:
        yield rows_of(streamed)


@contextmanager
def _pool(workers: int):
    if workers <= 1:
        yield None
        return
    # forkserver, not fork: the caller may be a Dagster step with threads running. Workers fork from a
    # server that has imported only the parsing module, so they start fast and small.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["engagement_assets.ingestion.parsing"])
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield pool


class _ChunkWriter:
    """Turns the kept rows of each input chunk (`chunk_size` records) into a deduplicated, learner-sorted
    Parquet part, and keeps the learner attributes of every result. A part is written by a background
    thread (DuckDB releases the GIL) while the next chunk is parsed, so the parser workers are not left
    waiting for the write; one write at a time."""

    def __init__(self, con, parts: ParquetParts, report: CleaningReport, chunk_size: int, quarantine):
        self.con, self.parts, self.report, self.chunk_size = con, parts, report, chunk_size
        self.quarantine = quarantine
        self._batches: list[pa.Table] = []
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="clean-drop-part")
        self._writing: Future | None = None
        self._attributes: list[pa.Table] = []

    def absorb(self, result: RowsResult) -> None:
        start = self.report.records
        for offset, item in result.malformed:
            if item.reason == "malformed_event":
                item = Malformed(item.reason, f"record {start + offset + 1} ({item.location})", item.raw)
            self.quarantine(item)
        taken = 0
        boundary = (start // self.chunk_size + 1) * self.chunk_size
        while True:
            upto = bisect.bisect_left(result.row_records, boundary - start, lo=taken)
            self._batches.append(result.table.slice(taken, upto - taken))
            taken = upto
            if start + result.records < boundary:
                break
            self.flush()
            boundary += self.chunk_size
        self._attributes.append(result.attributes)
        if len(self._attributes) >= ATTRIBUTE_BATCHES_KEPT:
            self._attributes = [merge_attributes(self._attributes)]
        self.report.records += result.records
        self.report.events += result.events
        self.report.dropped.update(result.dropped)

    def learner_attributes(self) -> pa.Table:
        """Every learner's combinations of attributes over the drop so far, in learner order."""
        return merge_attributes(self._attributes).sort_by(
            [(name, "ascending") for name in ("user_id", "first_seen")]
        )

    def __enter__(self) -> _ChunkWriter:
        return self

    def __exit__(self, *exc) -> None:
        # Also when the drop failed: no write may outlive the DuckDB connection it uses.
        self._writer.shutdown()

    def finish(self) -> None:
        """Write what is left and wait for every part."""
        if any(batch.num_rows for batch in self._batches) or not (self.parts.files or self._writing):
            self.flush()
        self._wait()

    def flush(self) -> None:
        chunk = pa.concat_tables(self._batches) if self._batches else RESPONSE_SCHEMA.empty_table()
        self._batches = []
        self._wait()
        path = self.parts.next_path()
        self._writing = self._writer.submit(self._write, chunk, path)

    def _wait(self) -> None:
        """Account for the part being written, once it is."""
        if self._writing is None:
            return
        writing, self._writing = self._writing, None
        path, rows, written = writing.result()
        self.report.dropped[DUPLICATE] += rows - written
        self.parts.added(path, written)

    def _write(self, chunk: pa.Table, path: Path) -> tuple[Path, int, int]:
        self.con.register("chunk", chunk)
        # DuckDB writes the part straight from the Arrow chunk: no deduplicated copy is built in Python.
        (written,) = self.con.execute(
            f"""COPY (SELECT * FROM chunk
                      QUALIFY row_number() OVER (PARTITION BY event_mid, event_ets ORDER BY {_EARLIEST_FIRST}) = 1
                      ORDER BY {_LEARNER_ORDER})
                TO '{_sql_path(path)}' {_PARQUET_OPTIONS}"""
        ).fetchone()
        self.con.unregister("chunk")
        return path, chunk.num_rows, written


def _dedupe_across_parts(con: duckdb.DuckDBPyConnection, parts: ParquetParts, report: CleaningReport) -> None:
    """Drop rows whose (event_mid, event_ets) already appears with an earlier created_at in another part."""
    if len(parts.files) < 2:
        return
    losers = con.sql(
        f"""SELECT filename, event_mid, event_ets FROM (
                SELECT filename, event_mid, event_ets, row_number() OVER (
                    PARTITION BY event_mid, event_ets ORDER BY {_EARLIEST_FIRST}, filename) AS rank
                FROM read_parquet(?, filename = true))
            WHERE rank > 1""",
        params=[[str(path) for path in parts.files]],
    ).to_arrow_table()
    if losers.num_rows == 0:
        return
    con.register("losers", losers)
    for filename in sorted(set(losers.column("filename").to_pylist())):
        kept = con.sql(
            f"""SELECT * EXCLUDE (filename) FROM read_parquet(?, filename = true) AS part
                WHERE NOT EXISTS (
                    SELECT 1 FROM losers
                    WHERE losers.filename = part.filename
                      AND losers.event_mid IS NOT DISTINCT FROM part.event_mid
                      AND losers.event_ets IS NOT DISTINCT FROM part.event_ets)
                ORDER BY {_LEARNER_ORDER}""",
            params=[filename],
        ).to_arrow_table()
        _rewrite_part(Path(filename), kept.cast(RESPONSE_SCHEMA))
    report.dropped[DUPLICATE] += losers.num_rows
    con.unregister("losers")


def _rewrite_part(path: Path, table: pa.Table) -> None:
    temp = path.with_suffix(".rewrite")
    pq.write_table(table, temp, row_group_size=ROW_GROUP_SIZE, compression="zstd")
    temp.replace(path)


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


class _Quarantine:
    """Writes each malformed record (its bytes without API tokens) to the drop's quarantine file, up to a cap:
    a drop of millions of broken lines costs its counts, not unbounded storage and scratch."""

    def __init__(self, out: BinaryIO, report: CleaningReport, drop: str, max_bytes: int):
        self.out, self.report, self.drop, self.room = out, report, drop, max_bytes

    def __call__(self, item: Malformed) -> None:
        self.report.quarantined[item.reason] += 1
        entry = {"drop": self.drop, "reason": item.reason, "location": item.location, "bytes": len(item.raw)}
        raw, entry["tokens_removed"] = tokens.without_tokens(item.raw)
        try:
            entry["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            entry["raw_base64"] = base64.b64encode(raw).decode("ascii")
        line = orjson.dumps(entry) + b"\n"
        if len(line) > self.room:
            self.report.quarantine_not_stored += 1
            self.room = 0  # later, smaller records stay out too: the file keeps the drop's first ones
            return
        self.out.write(line)
        self.room -= len(line)


class _duckdb:
    """A private DuckDB connection with bounded memory that spills to the drop's work folder."""

    def __init__(self, workdir: Path):
        self.workdir = workdir

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        self.con = duckdb.connect(config={"memory_limit": "128MB", "threads": 2})
        self.con.execute("SET temp_directory = ?", [str(self.workdir / "duckdb-spill")])
        self.con.execute("SET preserve_insertion_order = false")
        return self.con

    def __exit__(self, *exc) -> None:
        self.con.close()
