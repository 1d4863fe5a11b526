"""The original system's stage 1, rebuilt as the benchmark baseline.

This is how a straightforward pandas script does the job the `cleaned_telemetry` asset does: ijson streams a
JSON array (`json.loads` per line for JSONL) into lists of 200,000 records; each list is flattened with
`pd.json_normalize`, cleaned with DataFrame operations and written as one CSV. It applies the same rules as
stage 1 (README, docs/identity.md), so its kept responses can be checked against ours. It is written the idiomatic pandas way:
not tuned, and not slowed down on purpose either.

Run alone: python benchmarks/baseline_original.py INPUT OUT_DIR [--chunk-size N]
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import ijson
import numpy as np
import pandas as pd

CHUNK_SIZE = 200_000
ENVELOPE = ["api_id", "ver", "params", "ets", "channel", "pid", "mid", "syncts"]
COLUMNS = [
    "event_mid",
    "event_ets",
    "user_id",
    "user_id_source",
    "session_id",
    "language",
    "original_text",
    "response_text",
    "accuracy_percentage",
    "audio_link",
    "created_at",
]
# json_normalize turns {"$numberLong": "…"} under `ets` into a column `ets.$numberLong`, and so on.
WRAPPER_SUFFIXES = ["", ".$numberLong", ".$numberInt", ".$numberDouble", ".$date", ".$date.$numberLong"]


# ---------------------------------------------------------------------------------------------- reading


def iter_records(path: Path, stats: dict) -> Iterator[dict]:
    """Storage rows of a JSON array (ijson) or JSONL file; unparseable lines are skipped and counted."""
    with open(path, "rb") as stream:
        array = stream.read(4096).lstrip().startswith(b"[")
        stream.seek(0)
        if array:
            yield from ijson.items(stream, "item")
            return
        for line in stream:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                stats["bad_lines"] += 1


def chunked(records: Iterable[dict], size: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --------------------------------------------------------------------------------------- value helpers
# Lists (cdata, edata.values) stay Python objects after json_normalize, so they are read with .map().


def unwrap(value):
    if isinstance(value, dict) and len(value) == 1:
        key, inner = next(iter(value.items()))
        if key in ("$numberLong", "$numberInt"):
            return int(inner)
        if key in ("$numberDouble", "$numberDecimal"):
            return float(inner)
        if key == "$oid":
            return inner
    return value


def as_text(value):
    value = unwrap(value)
    if value is None or isinstance(value, (dict, list)) or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else str(value)


def as_identifier(value):
    text = as_text(value)
    return (text.strip() or None) if text is not None else None


def as_number(value):
    value = unwrap(value)
    if value is None or isinstance(value, bool):
        return None
    try:
        result = float(value)  # ijson gives Decimal for non-integers
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def cdata_ids(cdata) -> dict:
    ids: dict = {}
    if isinstance(cdata, list):
        for entry in cdata:
            if isinstance(entry, dict) and entry.get("id") is not None:
                ids.setdefault(entry.get("type"), entry["id"])
    return ids


def first_values(values) -> dict:
    found: dict = {}
    if isinstance(values, list):
        for item in values:
            if isinstance(item, dict):
                for key, value in item.items():
                    found.setdefault(key, value)
    return found


def parse_events(events):
    """MySQL exports store the event as a JSON string; a list of events is exploded later."""
    if isinstance(events, str):
        try:
            events = json.loads(events)
        except json.JSONDecodeError:
            return np.nan
    if isinstance(events, dict):
        return [events]  # explode() would iterate a dict's keys
    return events


# -------------------------------------------------------------------------------------- column helpers


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame:
        return frame[name]
    return pd.Series(np.nan, index=frame.index, dtype=object)


def unwrapped(frame: pd.DataFrame, name: str) -> pd.Series:
    """A value that may be plain or wrapped in extended JSON, from its flattened columns."""
    result = pd.Series(np.nan, index=frame.index, dtype=object)
    for suffix in WRAPPER_SUFFIXES:
        if name + suffix in frame:
            result = result.fillna(frame[name + suffix].astype(object))
    return result


def to_epoch_ms(series: pd.Series) -> pd.Series:
    """Epoch ms from numbers, digit strings or ISO-8601 strings."""
    numeric = pd.to_numeric(series, errors="coerce")
    text = series.where(numeric.isna() & series.map(lambda v: isinstance(v, str)))
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    from_text = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    return numeric.fillna(from_text)


def without_anonymous(series: pd.Series) -> pd.Series:
    return series.where(series.str.lower() != "anonymous")


# -------------------------------------------------------------------------------------------- cleaning


def clean_chunk(records: list[dict]) -> pd.DataFrame:
    storage = pd.DataFrame(records)
    events = column(storage, "events").map(parse_events)
    bare = events.isna()
    # A row without `events` is itself the event.
    events[bare] = pd.Series([[record] for record in records], dtype=object)[bare]
    storage["events"] = events
    storage = storage.drop(columns=[name for name in ENVELOPE if name in storage and name != "syncts"])
    exploded = storage[["events"]].assign(
        createdAt=column(storage, "createdAt"), syncts=column(storage, "syncts")
    )
    exploded = exploded.explode("events", ignore_index=True)
    flat = pd.json_normalize(exploded.to_dict("records"))

    is_speak = (column(flat, "events.eid") == "RESPONSE") & (column(flat, "events.edata.type") == "SPEAK")
    flat = flat[is_speak]
    cdata = column(flat, "events.context.cdata").map(cdata_ids)
    values = column(flat, "events.edata.values").map(first_values)

    out = pd.DataFrame(index=flat.index)
    out["language"] = cdata.map(lambda ids: as_identifier(ids.get("language"))).str.lower()
    out["original_text"] = values.map(lambda found: as_text(found.get("original_text")))
    out["accuracy_percentage"] = values.map(lambda found: as_number(found.get("accuracy_percentage")))
    keep = (out["language"] == "en") & out["original_text"].notna() & out["accuracy_percentage"].notna()
    out, flat, cdata, values = out[keep], flat[keep], cdata[keep], values[keep]

    add_user_id(out, flat, cdata)
    out = out[out["user_id"].notna()]
    flat, cdata, values = flat.loc[out.index], cdata.loc[out.index], values.loc[out.index]

    out["event_mid"] = column(flat, "events.mid").map(as_identifier)
    out["event_ets"] = pd.to_datetime(to_epoch_ms(unwrapped(flat, "events.ets")), unit="ms")
    out["session_id"] = cdata.map(lambda ids: as_identifier(ids.get("ContentSession")))
    out["response_text"] = values.map(lambda found: as_text(found.get("response_text")))
    target = column(flat, "events.edata.target")
    out["audio_link"] = target.where(target.map(lambda v: isinstance(v, str) and v != ""))
    created = to_epoch_ms(unwrapped(flat, "createdAt"))
    for fallback in ("syncts", "events.syncts", "events.ets"):
        created = created.fillna(to_epoch_ms(unwrapped(flat, fallback)))
    out["created_at"] = pd.to_datetime(created, unit="ms")

    out = out.sort_values("created_at", na_position="last", kind="stable")
    return out.drop_duplicates(["event_mid", "event_ets"], keep="first")[COLUMNS]


def add_user_id(out: pd.DataFrame, flat: pd.DataFrame, cdata: pd.Series) -> None:
    """cdata virtualId if all digits, then cdata Buddy User, then the virtual_id claim of the first JWT in
    virtualId/User/uid/actor, then cdata User, context.uid, actor.id (never blank, anonymous or a JWT)."""
    raw = {
        "virtualId": cdata.map(lambda ids: as_identifier(ids.get("virtualId"))),
        "User": cdata.map(lambda ids: as_identifier(ids.get("User"))),
        "uid": column(flat, "events.context.uid").map(as_identifier),
        "actor": column(flat, "events.actor.id").map(as_identifier),
    }
    virtual = raw["virtualId"]
    claims = pd.Series(np.nan, index=out.index, dtype=object)
    for values in raw.values():
        claims = claims.fillna(values.map(jwt_virtual_id))
    candidates = {
        "virtualId": virtual.where(virtual.map(lambda v: isinstance(v, str) and v.isascii() and v.isdigit())),
        "buddy": ids_only(cdata.map(lambda ids: as_identifier(ids.get("Buddy User")))),
        "jwt": claims,
        "User": ids_only(raw["User"]),
        "uid": ids_only(raw["uid"]),
        "actor": ids_only(raw["actor"]),
    }
    user_id = pd.Series(np.nan, index=out.index, dtype=object)
    source = pd.Series(np.nan, index=out.index, dtype=object)
    for name, candidate in candidates.items():
        fills = user_id.isna() & candidate.notna()
        source[fills] = name
        user_id = user_id.fillna(candidate)
    out["user_id"], out["user_id_source"] = user_id, source


def jwt_segments(value) -> list[str] | None:
    """The header and payload segments of a JWT-shaped string (two dots, no whitespace), or None."""
    if not isinstance(value, str) or value.count(".") != 2 or value.split() != [value]:
        return None
    return value.split(".")[:2]


def decoded(segment: str):
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:
        return None


def is_jwt(value) -> bool:
    segments = jwt_segments(value)
    return segments is not None and all(isinstance(decoded(segment), dict) for segment in segments)


def jwt_virtual_id(value):
    """The numeric virtual_id claim of a JWT's payload, as a digit string."""
    segments = jwt_segments(value)
    payload = decoded(segments[1]) if segments else None
    claim = payload.get("virtual_id") if isinstance(payload, dict) else None
    if isinstance(claim, int) and not isinstance(claim, bool) and claim >= 0:
        return str(claim)
    return claim if isinstance(claim, str) and claim.isascii() and claim.isdigit() else None


def ids_only(series: pd.Series) -> pd.Series:
    """Drop anonymous values and API tokens (a credential is never an id)."""
    series = without_anonymous(series)
    return series.where(~series.map(is_jwt))


def run(path: Path, out_dir: Path, chunk_size: int = CHUNK_SIZE) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = {"records": 0, "rows_written": 0, "chunks": 0, "bad_lines": 0}
    for index, records in enumerate(chunked(iter_records(path, stats), chunk_size)):
        cleaned = clean_chunk(records)
        cleaned.to_csv(out_dir / f"cleaned_{index:05d}.csv", index=False)
        stats["records"] += len(records)
        stats["rows_written"] += len(cleaned)
        stats["chunks"] += 1
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    stats = run(args.input, args.out_dir, args.chunk_size)
    stats["seconds"] = time.perf_counter() - started
    json.dump(stats, sys.stdout)
    print()


if __name__ == "__main__":
    main()
