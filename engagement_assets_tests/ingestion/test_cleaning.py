"""clean_drop: chunking, deduplication within and across chunks, counting and quarantine."""

from __future__ import annotations

import base64
import datetime
import gzip
import io
import json

import pyarrow.parquet as pq
import pytest

from engagement_assets.ingestion.cleaning import clean_drop
from engagement_assets.ingestion.events import LEARNER_ATTRIBUTES_SCHEMA, RESPONSE_SCHEMA


def response(mid: str, user: str, created_ms: int, ets: int = 1_000, accuracy=90.0) -> dict:
    return {
        "createdAt": {"$date": created_ms},
        "events": {
            "eid": "RESPONSE",
            "ets": ets,
            "mid": mid,
            "context": {"cdata": [{"id": user, "type": "virtualId"}, {"id": "en", "type": "language"}]},
            "edata": {
                "type": "SPEAK",
                "values": [{"original_text": "hi"}, {"accuracy_percentage": accuracy}],
            },
        },
    }


def jsonl(rows) -> io.BytesIO:
    return io.BytesIO(b"\n".join(json.dumps(row).encode() for row in rows))


def run(tmp_path, data: io.BytesIO, chunk_size: int = 3):
    parts, report, quarantine, _ = clean_drop(data, "drop.jsonl", tmp_path / "work", chunk_size)
    tables = [pq.read_table(path) for path in parts.files]
    return tables, report, quarantine


def test_one_part_per_input_chunk_sorted_by_learner(tmp_path):
    rows = [response(f"m{i}", f"{9 - i % 3}000000000", 5_000 + i) for i in range(7)]
    tables, report, _ = run(tmp_path, jsonl(rows), chunk_size=3)
    assert [table.num_rows for table in tables] == [3, 3, 1]
    assert all(table.schema.equals(RESPONSE_SCHEMA) for table in tables)
    for table in tables:
        users = table.column("user_id").to_pylist()
        assert users == sorted(users)
    assert (report.records, report.events, report.kept, report.chunks, report.learners) == (7, 7, 7, 3, 3)


def test_duplicates_keep_the_earliest_copy_within_and_across_chunks(tmp_path):
    rows = [
        response("a", "1000000001", created_ms=9_000),
        response("a", "1000000001", created_ms=8_000),  # same chunk, earlier: wins
        response("b", "1000000001", created_ms=5_000),
        response("c", "1000000001", created_ms=7_000),  # chunk 2, later than its twin in chunk 3
        response("x", "1000000001", created_ms=1),
        response("x", "1000000001", created_ms=1, ets=2),  # same mid, other ets: not a duplicate
        response("c", "1000000001", created_ms=6_000),  # chunk 3: wins
        response("b", "1000000001", created_ms=5_000),  # exact re-send, same time: first chunk wins
    ]
    tables, report, _ = run(tmp_path, jsonl(rows), chunk_size=3)
    kept = [
        (mid, int(ts.timestamp() * 1000), i)
        for i, t in enumerate(tables)
        for mid, ts in zip(t.column("event_mid").to_pylist(), t.column("created_at").to_pylist(), strict=True)
    ]
    assert sorted(kept) == [("a", 8_000, 0), ("b", 5_000, 0), ("c", 6_000, 2), ("x", 1, 1), ("x", 1, 1)]
    assert report.dropped["duplicate"] == 3
    assert report.kept == 5


def test_every_event_is_counted_once(tmp_path):
    rows = [
        response("k1", "1000000001", 1),
        {"events": [{"eid": "IMPRESSION"}, {"eid": "LOG"}]},
        {"events": json.dumps({"eid": "RESPONSE", "edata": {"type": "SPEAK"}, "context": {}})},
        response("k2", "anonymous", 2),
    ]
    _, report, _ = run(tmp_path, jsonl(rows))
    assert report.records == 4
    assert report.events == 5
    assert report.kept == 1
    assert dict(+report.dropped) == {"not_response": 2, "language_missing": 1, "no_user_id": 1}
    assert report.kept + sum(report.dropped.values()) == report.events


def test_malformed_records_are_quarantined_with_their_bytes(tmp_path):
    good = json.dumps(response("k1", "1000000001", 1)).encode()
    data = b"\n".join([good, b'{"broken": ', b'{"events": "{not json"}', b'{"t": "\xff"}'])
    tables, report, quarantine = run(tmp_path, io.BytesIO(data))
    assert sum(table.num_rows for table in tables) == 1
    assert dict(report.quarantined) == {"malformed_json": 1, "malformed_event": 1, "invalid_utf8": 1}
    entries = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [entry["reason"] for entry in entries] == ["malformed_json", "malformed_event", "invalid_utf8"]
    assert entries[0]["raw"] == '{"broken": '
    assert base64.b64decode(entries[2]["raw_base64"]) == b'{"t": "\xff"}'
    assert all(entry["drop"] == "drop.jsonl" for entry in entries)


def test_the_quarantine_keeps_no_api_token(tmp_path):
    claims = base64.urlsafe_b64encode(b'{"virtual_id":4829163057}').rstrip(b"=").decode()
    token = f"eyJhbGciOiJIUzI1NiJ9.{claims}.c2lnbmF0dXJl"
    broken = ('{"events": {"context": {"cdata": [{"type": "virtualId", "id": "' + token + '"}]}').encode()
    _, report, quarantine = run(tmp_path, io.BytesIO(broken + b"\n" + broken.replace(b"}", b"\xff}", 1)))
    assert report.quarantined["malformed_json"] + report.quarantined["invalid_utf8"] == 2
    text = quarantine.read_text()
    (first, second) = [json.loads(line) for line in text.splitlines()]
    assert token not in text and token.encode() not in base64.b64decode(second["raw_base64"])
    assert "<token removed>" in first["raw"] and first["tokens_removed"] == second["tokens_removed"] == 1
    assert first["bytes"] == len(broken)


def test_a_drop_without_responses_still_has_one_typed_part(tmp_path):
    tables, report, _ = run(tmp_path, jsonl([{"events": {"eid": "START"}}]))
    assert len(tables) == 1 and tables[0].num_rows == 0
    assert tables[0].schema.equals(RESPONSE_SCHEMA)
    assert report.kept == 0


def test_chunk_size_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="chunk_size"):
        run(tmp_path, jsonl([]), chunk_size=0)


@pytest.mark.parametrize("layout", ["jsonl", "array"])
def test_parser_workers_give_exactly_the_sequential_result(tmp_path, layout):
    rows = [response(f"m{i % 40}", f"{1000000000 + i % 7}", 5_000 + i, ets=i % 3) for i in range(120)]
    rows.insert(50, {"events": "{broken"})
    text = json.dumps(rows, indent=1) if layout == "array" else "\n".join(json.dumps(row) for row in rows)
    outputs = []
    for workers in (1, 2):
        parts, report, quarantine, _ = clean_drop(
            io.BytesIO(text.encode()),
            "d",
            tmp_path / f"w{workers}",
            chunk_size=25,
            workers=workers,
            segment_bytes=900,
        )
        tables = [pq.read_table(path) for path in parts.files]
        outputs.append((tables, report, quarantine.read_text()))
    (sequential, report_1, quarantine_1), (parallel, report_2, quarantine_2) = outputs
    assert len(sequential) == 5 and all(a.equals(b) for a, b in zip(sequential, parallel, strict=True))
    assert report_1 == report_2 and report_1.records == 121
    assert quarantine_1 == quarantine_2 and '"record 51' in quarantine_1


def test_a_record_repeating_a_key_is_quarantined_not_half_read(tmp_path):
    first, second = (json.dumps(response(mid, "1000000001", 1)["events"]) for mid in ("k1", "k2"))
    repeated = f'{{"createdAt": {{"$date": 1}}, "events": {first}, "events": {second}}}'.encode()
    in_string = json.dumps({"events": first[:-1] + ', "context": {"cdata": []}}'}).encode()
    data = b"\n".join([json.dumps(response("k3", "1000000001", 1)).encode(), repeated, in_string])
    tables, report, quarantine = run(tmp_path, io.BytesIO(data))
    assert sum(table.num_rows for table in tables) == 1
    assert dict(report.quarantined) == {"duplicate_key": 2}
    entries = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [entry["raw"].encode() for entry in entries] == [repeated, in_string]
    assert [entry["location"].split()[:2] for entry in entries] == [["line", "2"], ["line", "3"]]


def test_the_quarantine_is_capped_and_every_malformed_record_is_still_counted(tmp_path):
    broken = b"".join(b'{"x": not json %d}\n' % i for i in range(20_000))
    data = io.BytesIO(gzip.compress(broken))
    parts, report, quarantine, _ = clean_drop(
        data, "bad.jsonl.gz", tmp_path / "work", max_quarantine_bytes=100_000
    )
    stored = quarantine.read_bytes().splitlines()
    assert quarantine.stat().st_size <= 100_000 and stored
    assert sum(report.quarantined.values()) == 20_000
    assert report.quarantine_not_stored == 20_000 - len(stored)
    assert parts.rows == 0


@pytest.mark.parametrize(
    "ets",
    ["99999999999999999999", 18_446_744_073_709_551_615, {"$numberLong": "-99999999999999999999"}, 1e300],
)
def test_a_time_no_tool_can_hold_is_unreadable_and_costs_only_that_value(tmp_path, ets):
    rows = [response("a", "1111111111", 10_000), response("b", "2222222222", 20_000, ets=ets)]
    tables, report, _ = run(tmp_path, jsonl(rows))
    kept = {row["event_mid"]: row for table in tables for row in table.to_pylist()}
    assert report.kept == 2 and not report.quarantined
    assert kept["b"]["event_ets"] is None and kept["a"]["event_ets"] is not None


def test_a_record_too_large_to_be_an_all_row_is_quarantined_by_reference(tmp_path):
    huge = response("big", "3333333333", 30_000)
    huge["padding"] = "x" * (17 << 20)
    rows = [response("a", "1111111111", 10_000), huge, response("b", "2222222222", 20_000)]
    data = io.BytesIO(json.dumps(rows).encode())
    _, report, quarantine = run(tmp_path, data)
    assert report.kept == 2 and report.quarantined == {"oversized": 1}
    (entry,) = [json.loads(line) for line in quarantine.read_bytes().splitlines()]
    assert (
        entry["reason"] == "oversized" and entry["bytes"] == 1024 and "bytes; the first" in entry["location"]
    )


def test_each_learners_attributes_over_the_whole_drop_are_the_same_with_workers(tmp_path):
    rows = []
    for i in range(300):
        row = response(f"m{i}", f"{1000000000 + i % 5}", 10_000 + i)
        # Learner 0 moves from device d0 to d9 halfway; every learner but 4 names a school.
        device = "d9" if i % 5 == 0 and i >= 150 else f"d{i % 5}"
        row["events"]["context"] |= {"did": device, "pdata": {"id": "all.ll.app", "ver": "1.4.1"}}
        if i % 5 != 4:
            row["events"]["context"]["cdata"].append({"id": f"school {i % 5}", "type": "school_name"})
        rows.append(row)
    text = "\n".join(json.dumps(row) for row in rows).encode()
    found = []
    for workers in (1, 2):
        cleaned = clean_drop(
            io.BytesIO(text), "d", tmp_path / f"w{workers}", 40, workers, segment_bytes=4_000
        )
        assert cleaned.attributes.schema.equals(LEARNER_ATTRIBUTES_SCHEMA)
        found.append(cleaned.attributes.to_pylist())
    assert found[0] == found[1]
    by_device = {(row["user_id"], row["device_id"]): row for row in found[0]}
    assert len(found[0]) == 6  # learner 0 on two devices, the others on one
    moved = by_device[("1000000000", "d0")], by_device[("1000000000", "d9")]
    epoch = datetime.datetime(1970, 1, 1)
    assert [row["last_seen"] - epoch for row in moved] == [
        datetime.timedelta(milliseconds=ms) for ms in (10_145, 10_295)
    ]
    assert by_device[("1000000004", "d4")]["school_name"] is None
    assert {row["app_version"] for row in found[0]} == {"1.4.1"}
