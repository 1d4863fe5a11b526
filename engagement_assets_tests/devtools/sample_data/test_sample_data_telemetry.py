from __future__ import annotations

import gzip
import json
from collections import Counter

from engagement_assets.devtools.sample_data import plan_files

ENVELOPE = {"api_id", "ver", "params", "ets", "events", "channel", "pid", "mid", "syncts"}


def _text(path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode("utf-8")


def test_both_formats_and_gzip_are_written_and_parse(landed_default):
    regular = [f for f in landed_default.summary.files if not f.malformed]
    suffixes = {f.path.split(".", 1)[1] for f in regular}
    assert suffixes == {"json", "jsonl", "json.gz", "jsonl.gz"}
    for f in regular:
        text = _text(landed_default.root / f.path)
        if f.format == "json":
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        assert len(rows) == f.records > 0


def test_json_arrays_are_pretty_printed_like_exporters(landed_default):
    layouts = {}
    for f in landed_default.summary.files:
        if f.format == "json":
            layouts[f.layout] = _text(landed_default.root / f.path)
    assert layouts["compass"].startswith('[{\n  "_id": {\n    "$oid": "') or layouts["compass"].startswith(
        '[{\n  "id": '
    )
    assert layouts["mongoexport_pretty"].startswith("[{\n\t")
    assert layouts["script_dump"].startswith("[\n {\n  ")


def test_jsonl_rows_are_one_compact_document_per_line(landed_default):
    text = _text(landed_default.root / "telemetry/all_telemetry_part2.jsonl")
    lines = [line for line in text.split("\n") if line]
    assert all(line.startswith("{") and line.endswith("}") for line in lines)
    assert text.endswith("\n") and "\n\n" in text  # one blank line, which readers must skip


def test_every_date_form_is_present(landed):
    forms = Counter()
    for _, row in landed.rows():
        if "createdAt" in row:
            value = row["createdAt"]["$date"]
            forms[type(value).__name__] += 1
            if isinstance(value, str):
                assert value.endswith("Z") and "T" in value
            if isinstance(value, dict):
                assert set(value) == {"$numberLong"}
    assert set(forms) == {"str", "dict", "int"}


def test_canonical_rows_wrap_every_number(landed):
    canonical = [row for _, row in landed.rows() if isinstance(row.get("ets"), dict)]
    assert canonical
    for row in canonical:
        events = row["events"] if isinstance(row["events"], list) else [row["events"]]
        for event in events:
            assert set(event["ets"]) == {"$numberLong"}
            for item in event["edata"].get("values", []):
                for key in ("accuracy_percentage", "duration"):
                    if key in item:
                        assert isinstance(item[key], dict) and set(item[key]) <= {
                            "$numberDouble",
                            "$numberInt",
                        }
        assert set(row["syncts"]) == {"$numberLong"}


def test_mysql_rows_carry_json_strings_and_no_created_at(landed):
    mysql = [row for _, row in landed.rows() if "id" in row and "api_id" in row]
    assert mysql
    for row in mysql:
        assert isinstance(row["id"], int) and "createdAt" not in row and "_id" not in row
        assert isinstance(json.loads(row["params"]), dict)
        assert isinstance(json.loads(row["events"]), (dict, list))
        assert set(row) == ENVELOPE | {"id"}


def test_mongo_rows_have_oid_and_the_whole_envelope(landed):
    mongo = [row for _, row in landed.rows() if "_id" in row]
    assert mongo
    for row in mongo:
        assert len(row["_id"]["$oid"]) == 24
        assert set(row) == ENVELOPE | {"_id", "createdAt"}
        assert row["api_id"] == "api.sunbird.telemetry"


def test_rare_row_shapes_are_present(landed):
    batch_rows = 0
    bare_events = 0
    for _, row in landed.rows():
        events = row.get("events")
        if isinstance(events, str) and events.startswith("["):
            events = json.loads(events)
        batch_rows += isinstance(events, list) and len(events) > 1
        bare_events += "events" not in row and "eid" in row and "@timestamp" in row
    assert batch_rows and bare_events


def test_duplicates_are_resent_later_in_the_same_and_other_files(landed):
    copies: dict[tuple, list] = {}
    for path, row, event in landed.events():
        copies.setdefault((event["mid"], event["ets"]), []).append((path, row))
    resent = {key: rows for key, rows in copies.items() if len(rows) > 1}
    assert resent
    assert any(len({path for path, _ in rows}) == 1 for rows in resent.values())
    assert any(len({path for path, _ in rows}) > 1 for rows in resent.values())
    for rows in resent.values():
        syncts = [row.get("syncts") for _, row in rows]
        syncts = [value["$numberLong"] if isinstance(value, dict) else value for value in syncts]
        assert len(set(syncts)) == len(syncts)


def test_every_user_id_variant_is_present(landed):
    seen = set()
    for _, _, event in landed.responses():
        context = event["context"]
        cdata = {entry["type"]: entry for entry in context["cdata"]}
        virtual = cdata.get("virtualId", {})
        user = cdata.get("User", {})
        if str(virtual.get("id", "")).isdigit():
            seen.add("numeric virtualId")
        if str(virtual.get("id", "")).count(".") == 2 and str(user.get("id", "")).isdigit():
            seen.add("token virtualId, id in User")
        if user.get("id") == "anonymous" and str(context.get("uid", "")).isdigit():
            seen.add("anonymous User, id in uid")
        for entry in (virtual, user):
            if entry and "id" not in entry:
                seen.add("cdata without id key")
            if entry and "id" in entry and entry["id"] is None:
                seen.add("cdata id null")
        if user.get("id") == "" and virtual.get("id") == "" and context.get("uid") == "":
            seen.add("emptied ids (Sep 2025)")
        ids_elsewhere = [str(context.get("uid", "")), str(virtual.get("id", "")), str(user.get("id", ""))]
        if event["actor"].get("id") == context["did"] and not any(i.isdigit() for i in ids_elsewhere):
            seen.add("device fingerprint is the only id")
        if "Buddy User" in cdata:
            seen.add("Buddy User")
        if "id" not in event["actor"] and "uid" not in context:
            seen.add("nothing resolvable")
    assert seen == {
        "numeric virtualId",
        "token virtualId, id in User",
        "anonymous User, id in uid",
        "cdata without id key",
        "cdata id null",
        "emptied ids (Sep 2025)",
        "device fingerprint is the only id",
        "Buddy User",
        "nothing resolvable",
    }


def test_languages_scripts_and_nbsp(landed_default):
    landed = landed_default
    languages = Counter()
    for _, _, event in landed.responses():
        cdata = {entry["type"]: entry.get("id") for entry in event["context"]["cdata"]}
        languages[cdata.get("language", "missing")] += 1
    assert {"en", "ta", "hi", "kn", "missing"} <= set(languages)
    raw = b"".join(
        (landed.root / path).read_bytes() for path in landed.rows_by_file if not path.endswith(".gz")
    )
    assert "நான்".encode() in raw or "இது".encode() in raw or "அம்மா".encode() in raw or "மழை".encode() in raw
    assert b"\\u0b" not in raw.lower()  # scripts are raw UTF-8, never \u-escaped
    assert "\u00a0".encode() in raw


def test_response_variants(landed):
    kinds = Counter()
    for _, _, event in landed.responses():
        values = {}
        for item in event["edata"]["values"]:
            for key, value in item.items():
                values.setdefault(key, value)
        if "profanity" in values:
            assert set(values) == {"profanity", "original_text"}
            kinds["profanity"] += 1
        elif "isCorrect" in values:
            assert event["edata"]["target"] == "" and "response_text" not in values
            kinds["rflow"] += 1
        elif values["response_text"] == "":
            assert values["accuracy_percentage"] == 0
            kinds["silence"] += 1
        else:
            kinds["scored"] += 1
    assert all(kinds[kind] for kind in ("profanity", "rflow", "silence", "scored"))
    orders = {
        tuple(next(iter(item)) for item in event["edata"]["values"])
        for _, _, event in landed.responses()
        if "response_text" in str(event["edata"]["values"])
    }
    assert len(orders) > 5  # one-key objects in varying order


def test_unrelated_events_are_mixed_in(landed):
    eids = Counter(event["eid"] for _, _, event in landed.events())
    assert {"START", "END", "IMPRESSION", "INTERACT", "LOG", "ERROR", "RESPONSE"} <= set(eids)
    logs = [event for _, _, event in landed.events() if event["eid"] == "LOG"]
    assert all(isinstance(json.loads(event["edata"]["message"]), dict) for event in logs)


def test_event_mids_follow_the_sdk_form(landed):
    for _, _, event in landed.events():
        eid, digest = event["mid"].split(":")
        assert eid == event["eid"] and len(digest) == 32


def test_file_plans():
    assert [s.name for s in plan_files(2, "jsonl", False)] == [
        "all_telemetry_part1.jsonl",
        "all_telemetry_part2.jsonl.gz",
    ]
    assert all(s.name.endswith(".json.gz") for s in plan_files(3, "json", True))
    assert [s.compressed for s in plan_files(4, "both", False)] == [False, False, True, True]
