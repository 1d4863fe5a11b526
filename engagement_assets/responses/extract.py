"""Stage 2: one learner's responses across every drop, deduplicated and in time order.

All requested learners are extracted together. The cleaned Parquet parts are sorted by learner with small
row groups, so the filter on the batch's `user_id` range skips row groups that hold only other learners;
each learner's table is then a zero-copy slice of one sorted table.

A refresh does not re-read the history. Each learner's stored responses record which cleaned parts they were
built from (`CleanedState.provenance`, in the Parquet file's key-value metadata): when those parts are all
still there unchanged, the learner's stored rows are carried over and only the parts written since are read.
Anything else (a drop cleaned again or removed, a file from other rules, a file that cannot be read) rebuilds
that learner from every drop. Both ways give the same rows. Every row is accounted for: it is a learner's
row, or a copy of a response another drop already holds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engagement_assets.ingestion.events import RESPONSE_SCHEMA
from engagement_assets.storage import layout
from engagement_assets.storage.keys import key_of, storage_segment, text_of_key
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.store import Store, StoredFile

CLEANED = "cleaned_telemetry"
USER_RESPONSES = "user_responses"
# The key-value metadata entry of a learner's stored responses that names what they were built from.
PROVENANCE = b"engagement.cleaned_parts_read"
# Bumped whenever the extraction's rules change, so responses stored under older rules are rebuilt.
RULES_VERSION = 1
# Stored responses are read from S3 one object per learner: enough requests in flight to hide latency.
READ_THREADS = 8
# Within a learner: by arrival, missing times last, ties in a stable order.
_TIME_ORDER = [("created_at", "ascending"), ("event_mid", "ascending"), ("event_ets", "ascending")]


@dataclass(frozen=True)
class Extraction:
    """Each learner's responses (by learner key), and how they were made: `rows_read` rows from cleaned parts
    and `rows_carried` from the learners' stored responses, of which `duplicates_across_drops` were copies
    of a response another drop holds. `learners_rebuilt` were read from every drop."""

    responses: dict[str, pa.Table]
    rows_read: int
    rows_carried: int
    duplicates_across_drops: int
    learners_rebuilt: int
    parts_read: int


@dataclass(frozen=True)
class CleanedState:
    """The cleaned parts stage 1 has stored, with their sizes and times written."""

    parts: tuple[StoredFile, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(part.key for part in self.parts)

    @property
    def provenance(self) -> bytes:
        """What responses built from exactly these parts record about them."""
        written_until = max((part.modified for part in self.parts), default=0.0)
        return json.dumps(
            {"rules": RULES_VERSION, "written_until": written_until, "digest": _digest(self.parts)}
        ).encode()

    def unread_since(self, provenance: bytes | None) -> tuple[str, ...] | None:
        """The parts written after responses with this provenance were built, or None when the parts they
        were built from are not all still here unchanged (then they must be rebuilt from every part)."""
        try:
            recorded = json.loads(provenance or b"")
            written_until, digest = float(recorded["written_until"]), recorded["digest"]
        except (ValueError, TypeError, KeyError):
            return None
        if recorded.get("rules") != RULES_VERSION:
            return None
        # A part written in the same instant after they were built is then counted as read: the digest
        # no longer matches and the learner is rebuilt, never silently short of rows.
        if _digest(tuple(part for part in self.parts if part.modified <= written_until)) != digest:
            return None
        return tuple(part.key for part in self.parts if part.modified > written_until)


def _digest(parts: tuple[StoredFile, ...]) -> str:
    ordered = sorted(parts, key=operator.attrgetter("key"))
    text = "\n".join(f"{part.key}\0{part.size}\0{part.modified!r}" for part in ordered)
    return hashlib.sha256(text.encode()).hexdigest()


def cleaned_part_keys(store: Store) -> list[str]:
    return layout.partition_part_keys(store, CLEANED)


def extract_learner_responses(store: Store, learners: list[str]) -> Extraction:
    """The responses of the learners with these partition keys, deduplicated on (event_mid, event_ets)
    keeping the earliest created_at, sorted by created_at. Learners with no responses get an empty table."""
    ids = {learner: text_of_key(learner) for learner in learners}
    state = CleanedState(tuple(layout.partition_parts(store, CLEANED)))
    carried, reads, rebuilt = _plan(state, _stored_responses(store, learners), ids)
    read = [_read_learners(store, list(parts), learner_ids) for parts, learner_ids in reads.items()]
    rows_read, rows_carried = sum(t.num_rows for t in read), sum(t.num_rows for t in carried)
    table = pa.concat_tables([RESPONSE_SCHEMA.empty_table(), *carried, *read])
    # Stage 1 already removed duplicates within a drop: only responses from several drops can repeat.
    segments = {layout.segment_of_part(key) for parts in reads for key in parts}
    if len(segments) > 1 or (rows_carried and rows_read):
        table = deduplicate(table)
    responses = table.sort_by([("user_id", "ascending"), *_TIME_ORDER])
    responses = responses.replace_schema_metadata({PROVENANCE: state.provenance})
    spans = _learner_spans(responses.column("user_id").to_numpy(zero_copy_only=False))
    empty = responses.slice(0, 0)
    return Extraction(
        responses={
            learner: responses.slice(*spans[ids[learner]]) if ids[learner] in spans else empty
            for learner in learners
        },
        rows_read=rows_read,
        rows_carried=rows_carried,
        duplicates_across_drops=rows_read + rows_carried - responses.num_rows,
        learners_rebuilt=rebuilt,
        parts_read=len({key for parts in reads for key in parts}),
    )


def _plan(state: CleanedState, stored: dict[str, pa.Table | None], ids: dict[str, str]):
    """Which stored tables carry over, which parts to read for which learner ids ({parts: ids}), and how
    many learners are rebuilt from every part."""
    carried, reads, rebuilt = [], defaultdict(list), 0
    # A batch's learners were mostly stored by the same run: each provenance is checked once.
    unread_since = functools.cache(state.unread_since)
    for learner, table in stored.items():
        unread = unread_since(table.schema.metadata.get(PROVENANCE)) if table is not None else None
        if unread is None:
            rebuilt += 1
            unread = state.keys
        else:
            carried.append(table.replace_schema_metadata(None))
        if unread:
            reads[unread].append(ids[learner])
    return carried, reads, rebuilt


def _read_learners(store: Store, parts: list[str], learner_ids: list[str]) -> pa.Table:
    wanted = sorted(set(learner_ids))
    if not parts or not wanted:
        return RESPONSE_SCHEMA.empty_table()
    # The range lets pyarrow skip row groups by their min/max statistics (it does not for a long isin
    # list); the isin then keeps exactly the learners asked for.
    user = pc.field("user_id")
    wanted_rows = (user >= wanted[0]) & (user <= wanted[-1]) & user.isin(wanted)
    return read_parquet(store, parts, schema=RESPONSE_SCHEMA, filter=wanted_rows)


def _stored_responses(store: Store, learners: list[str]) -> dict[str, pa.Table | None]:
    """Each learner's responses as stage 2 last stored them, None when there are none it can use."""
    filesystem, root = store.arrow()

    def stored(learner: str) -> pa.Table | None:
        try:
            path = f"{root}/{layout.partition_file(USER_RESPONSES, learner)}"
            table = pq.ParquetFile(path, filesystem=filesystem).read()
        except (OSError, pa.ArrowException):
            return None  # never stored, or unreadable: rebuilt from the drops
        return table if table.schema.equals(RESPONSE_SCHEMA) else None

    with ThreadPoolExecutor(READ_THREADS) as pool:
        return dict(zip(learners, pool.map(stored, learners), strict=True))


def deduplicate(responses: pa.Table) -> pa.Table:
    """The earliest copy of each (event_mid, event_ets) (created_at nulls last), in key order. Copies that
    tie on created_at are told apart by their other columns, so the copy kept never depends on read order."""
    others = [name for name in responses.column_names if name not in ("event_mid", "event_ets", "created_at")]
    ordered = responses.sort_by(
        [("event_mid", "ascending"), ("event_ets", "ascending"), *_TIME_ORDER[:1]]
        + [(name, "ascending") for name in others]
    )
    if ordered.num_rows < 2:
        return ordered
    # Missing keys compare equal to each other, as a GROUP BY would treat them.
    mid = pc.fill_null(ordered.column("event_mid"), "").to_numpy(zero_copy_only=False)
    ets = pc.fill_null(ordered.column("event_ets").cast(pa.int64()), np.iinfo(np.int64).min).to_numpy()
    repeats = (mid[1:] == mid[:-1]) & (ets[1:] == ets[:-1])
    return ordered.filter(pa.array(np.concatenate(([True], ~repeats))))


def _learner_spans(users: np.ndarray) -> dict[str, tuple[int, int]]:
    """(offset, length) of each learner's rows in an array sorted by learner."""
    if not len(users):
        return {}
    starts = np.concatenate(([0], np.flatnonzero(users[1:] != users[:-1]) + 1))
    stops = np.append(starts[1:], len(users))
    return {users[start]: (int(start), int(stop - start)) for start, stop in zip(starts, stops, strict=True)}


def learner_keys(store: Store) -> list[str]:
    """The partition key of every learner with at least one cleaned response, sorted by learner id."""
    return _distinct_learners(store, cleaned_part_keys(store))


def learners_in_drops(store: Store, drops: list[str]) -> list[str]:
    """The partition keys of the learners with responses in these drops, sorted by learner id."""
    folders = {storage_segment(drop) for drop in drops}
    parts = [key for key in cleaned_part_keys(store) if layout.segment_of_part(key) in folders]
    return _distinct_learners(store, parts)


def _distinct_learners(store: Store, parts: list[str]) -> list[str]:
    if not parts:
        return []
    column = read_parquet(store, parts, schema=RESPONSE_SCHEMA, columns=["user_id"]).column("user_id")
    return [key_of(value) for value in sorted(pc.unique(column).to_pylist()) if value is not None]
