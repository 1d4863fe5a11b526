"""Stage 1: stream one telemetry drop into cleaned, deduplicated Parquet chunks.

Records are read in chunks of `chunk_size` input records; each chunk's responses are deduplicated on
(event_mid, event_ets) keeping the earliest created_at, sorted by learner (so per-learner reads can skip
row groups), and written as one Parquet part. Duplicates that span chunks are resolved at the end with one
DuckDB pass over the key columns, rewriting only the parts that lose rows. Memory stays bounded by one
chunk of kept rows plus one read block, whatever the drop size.
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from engagement_assets.ingestion.events import (
    DUPLICATE,
    RESPONSE_COLUMNS,
    MalformedEvent,
    classify,
    events_of,
)
from engagement_assets.ingestion.records import Malformed, iter_records
from engagement_assets.storage.parquet import ParquetParts

DEFAULT_CHUNK_SIZE = 200_000
ARROW_BATCH_ROWS = 20_000
# Small row groups let a one-learner read skip most of a part using the user_id min/max statistics.
ROW_GROUP_SIZE = 8_192

RESPONSE_SCHEMA = pa.schema(
    [
        ("event_mid", pa.string()),
        ("event_ets", pa.timestamp("ms")),
        ("user_id", pa.string()),
        ("user_id_source", pa.string()),
        ("session_id", pa.string()),
        ("language", pa.string()),
        ("original_text", pa.string()),
        ("response_text", pa.string()),
        ("accuracy_percentage", pa.float64()),
        ("audio_link", pa.string()),
        ("created_at", pa.timestamp("ms")),
    ]
)
assert tuple(RESPONSE_SCHEMA.names) == RESPONSE_COLUMNS

_EARLIEST_FIRST = "created_at NULLS LAST"
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


def clean_drop(
    stream: BinaryIO,
    name: str,
    workdir: Path,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[ParquetParts, CleaningReport, Path]:
    """Clean one drop into Parquet parts under `workdir`; returns the parts, the report and the quarantine file."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    parts = ParquetParts(workdir)
    parts.folder.mkdir(parents=True, exist_ok=True)
    quarantine_path = workdir / "quarantine.jsonl"
    report = CleaningReport()
    with _duckdb(workdir) as con, open(quarantine_path, "wb") as quarantine:
        chunk = _ChunkWriter(con, parts, report)
        for item in iter_records(stream, name):
            if isinstance(item, Malformed):
                _quarantine(quarantine, report, name, item)
                continue
            report.records += 1
            _collect(item, chunk.rows, report, name, quarantine)
            if report.records % chunk_size == 0:
                chunk.flush()
            elif len(chunk.rows) >= ARROW_BATCH_ROWS:
                chunk.compact()
        if chunk.rows or chunk.pending or not parts.files:
            chunk.flush()
        _dedupe_across_parts(con, parts, report)
        report.kept, report.learners = con.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM read_parquet(?)", [[str(p) for p in parts.files]]
        ).fetchone()
    report.chunks = len(parts.files)
    parts.rows = report.kept
    return parts, report, quarantine_path


def _collect(record: dict, rows: list, report: CleaningReport, name: str, quarantine: BinaryIO) -> None:
    try:
        events = events_of(record)
    except MalformedEvent as err:
        raw = orjson.dumps(record)
        _quarantine(
            quarantine, report, name, Malformed("malformed_event", f"record {report.records} ({err})", raw)
        )
        return
    for event in events:
        report.events += 1
        outcome = classify(record, event)
        if type(outcome) is tuple:
            rows.append(outcome)
        else:
            report.dropped[outcome] += 1


class _ChunkWriter:
    """Turns the kept rows of one input chunk into a deduplicated, learner-sorted Parquet part."""

    def __init__(self, con: duckdb.DuckDBPyConnection, parts: ParquetParts, report: CleaningReport):
        self.con, self.parts, self.report = con, parts, report
        self.rows: list[tuple] = []
        self._batches: list[pa.Table] = []

    @property
    def pending(self) -> bool:
        return bool(self._batches)

    def compact(self) -> None:
        """Python tuples take ~10x the memory of Arrow columns: convert as the chunk fills up."""
        self._batches.append(_rows_to_table(self.rows))
        self.rows = []

    def flush(self) -> None:
        self.compact()
        chunk = pa.concat_tables(self._batches)
        self._batches = []
        self.con.register("chunk", chunk)
        deduped = self.con.sql(
            f"""SELECT * FROM chunk
                QUALIFY row_number() OVER (PARTITION BY event_mid, event_ets ORDER BY {_EARLIEST_FIRST}) = 1
                ORDER BY {_LEARNER_ORDER}"""
        ).to_arrow_table()
        self.con.unregister("chunk")
        self.report.dropped[DUPLICATE] += chunk.num_rows - deduped.num_rows
        self.parts.add(deduped.cast(RESPONSE_SCHEMA), row_group_size=ROW_GROUP_SIZE)


def _rows_to_table(rows: list[tuple]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in RESPONSE_COLUMNS]
    return pa.table(
        [pa.array(values, type=column.type) for values, column in zip(columns, RESPONSE_SCHEMA, strict=True)],
        schema=RESPONSE_SCHEMA,
    )


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


def _quarantine(out: BinaryIO, report: CleaningReport, drop: str, item: Malformed) -> None:
    report.quarantined[item.reason] += 1
    entry = {"drop": drop, "reason": item.reason, "location": item.location, "bytes": len(item.raw)}
    try:
        entry["raw"] = item.raw.decode("utf-8")
    except UnicodeDecodeError:
        entry["raw_base64"] = base64.b64encode(item.raw).decode("ascii")
    out.write(orjson.dumps(entry) + b"\n")


class _duckdb:
    """A private DuckDB connection with bounded memory that spills to the drop's work folder."""

    def __init__(self, workdir: Path):
        self.workdir = workdir

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        self.con = duckdb.connect(config={"memory_limit": "256MB", "threads": 2})
        self.con.execute("SET temp_directory = ?", [str(self.workdir / "duckdb-spill")])
        self.con.execute("SET preserve_insertion_order = false")
        return self.con

    def __exit__(self, *exc) -> None:
        self.con.close()
