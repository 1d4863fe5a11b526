"""A deliberately plain reading of the stage-1 rules (README, "Stage 1"), used only to check the generator's planted truth."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from pathlib import Path

WRAPPERS = {"$numberLong": int, "$numberInt": int, "$numberDouble": float, "$oid": str}


def unwrap(value):
    if isinstance(value, dict):
        if len(value) == 1:
            key, inner = next(iter(value.items()))
            if key in WRAPPERS:
                return WRAPPERS[key](inner)
            if key == "$date":
                return unwrap(inner)
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def read_bytes(path: Path) -> bytes:
    """Whole content; a broken gzip stream yields what decompresses before the damage."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error):
        decompressor = zlib.decompressobj(wbits=31)
        try:
            return decompressor.decompress(raw)
        except zlib.error:
            return b""


def rows_of(path: Path) -> tuple[list[dict], int]:
    """(rows, malformed) from a JSON array or JSONL file, detected from content."""
    data = read_bytes(path)
    if not data.strip():
        return [], 1 if path.name.endswith(".gz") else 0
    if data.lstrip()[:1] == b"[":
        return _array_rows(data)
    rows, bad = [], 0
    lines = data.split(b"\n")
    complete = lines if data.endswith(b"\n") else lines[:-1]
    bad += 0 if data.endswith(b"\n") else 1
    for line in complete:
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            bad += 1
    return rows, bad


def _array_rows(data: bytes) -> tuple[list[dict], int]:
    text = data.decode("utf-8")
    try:
        return json.loads(text), 0
    except json.JSONDecodeError:
        pass
    decoder, rows, index = json.JSONDecoder(), [], text.index("[") + 1
    while True:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        try:
            row, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            return rows, 1
        rows.append(row)


def events_of(row: dict) -> list[dict]:
    if "events" not in row:
        return [row]
    events = row["events"]
    if isinstance(events, str):
        events = json.loads(events)
    return events if isinstance(events, list) else [events]


def _jwt_part(segment: str):
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:
        return None


def _jwt_claim(value):
    """(is a JWT, its numeric virtual_id claim or None)."""
    if not isinstance(value, str) or value.count(".") != 2 or any(char.isspace() for char in value):
        return False, None
    header, payload, _ = value.split(".")
    header, payload = _jwt_part(header), _jwt_part(payload)
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return False, None
    claim = payload.get("virtual_id")
    if isinstance(claim, int) and not isinstance(claim, bool):
        return True, str(claim)
    return True, claim if isinstance(claim, str) and claim.isascii() and claim.isdigit() else None


def _usable(value) -> bool:
    return isinstance(value, str) and value not in ("", "anonymous") and not _jwt_claim(value)[0]


def resolve_user(event: dict) -> tuple[str | None, str | None]:
    context = event.get("context") or {}
    cdata = {entry.get("type"): entry.get("id") for entry in reversed(context.get("cdata") or [])}
    actor = (event.get("actor") or {}).get("id")
    virtual = cdata.get("virtualId")
    if isinstance(virtual, str) and virtual.isascii() and virtual.isdigit():
        return virtual, "virtualId"
    if _usable(cdata.get("Buddy User")):
        return cdata["Buddy User"], "buddy"
    for value in (virtual, cdata.get("User"), context.get("uid"), actor):
        claim = _jwt_claim(value)[1]
        if claim:
            return claim, "jwt"
    for value, source in ((cdata.get("User"), "User"), (context.get("uid"), "uid"), (actor, "actor")):
        if _usable(value):
            return value, source
    return None, None


def kept_from_event(event: dict) -> tuple[str, int, str, str] | None:
    event = unwrap(event)
    edata = event.get("edata") or {}
    if event.get("eid") != "RESPONSE" or edata.get("type") != "SPEAK":
        return None
    values: dict = {}
    for item in edata.get("values") or []:
        for key, value in item.items():
            values.setdefault(key, value)
    accuracy = values.get("accuracy_percentage")
    if "original_text" not in values or isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)):
        return None
    cdata = (event.get("context") or {}).get("cdata") or []
    language = next((entry.get("id") for entry in cdata if entry.get("type") == "language"), None)
    if not isinstance(language, str) or language.lower() != "en":
        return None
    user_id, source = resolve_user(event)
    if user_id is None:
        return None
    return event["mid"], int(event["ets"]), user_id, source


def stage1_file(path: Path) -> tuple[list[tuple[str, int, str]], int, int]:
    """(kept triples deduplicated within the file, top-level rows, malformed)."""
    rows, malformed = rows_of(path)
    kept, seen = [], set()
    for row in rows:
        for event in events_of(row):
            found = kept_from_event(event)
            if found and found[:2] not in seen:
                seen.add(found[:2])
                kept.append(found[:3])
    return kept, len(rows), malformed
