from __future__ import annotations

import csv
import re
from collections import defaultdict
from datetime import UTC, datetime
from itertools import pairwise

from engagement_assets.devtools.sample_data.sessions_csv import MONGO_COLUMNS, MYSQL_COLUMNS
from engagement_assets.matching.sessions import sessions_key

NAIVE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
IST = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30$")
SESSION_ID = re.compile(r"^[A-Za-z0-9]{32}$")


def _csv_files(landed):
    folder = landed.root / "sessions"
    return {
        path.name: list(csv.DictReader(path.open(encoding="utf-8"))) for path in sorted(folder.glob("*.csv"))
    }


def _file_name(user_id: str) -> str:
    return sessions_key(user_id).removeprefix("sessions/")


def _epoch_ms(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def test_columns_and_created_at_forms(landed_default):
    forms = set()
    for name, rows in _csv_files(landed_default).items():
        header = (landed_default.root / "sessions" / name).read_text(encoding="utf-8").splitlines()[0]
        assert tuple(header.split(",")) in (MONGO_COLUMNS, MYSQL_COLUMNS)
        for row in rows:
            assert f"sessions/{name}" == sessions_key(row["userId"])
            assert SESSION_ID.match(row["sessionId"])
            value = row["createdAt"]
            form = next(
                f for f, pattern in (("naive", NAIVE), ("Z", UTC_Z), ("+05:30", IST)) if pattern.match(value)
            )
            forms.add((header.split(",")[0], form))
            if header.startswith("id,"):
                assert form == "naive" and row["id"].isdigit()
    assert {("_id", "naive"), ("_id", "Z"), ("_id", "+05:30"), ("id", "naive")} <= forms


def test_edge_rows_are_present(landed_default):
    seen = set()
    for rows in _csv_files(landed_default).values():
        by_session = defaultdict(list)
        for row in rows:
            by_session[row["sessionId"]].append(row)
        for session_rows in by_session.values():
            for before, row in pairwise(session_rows):
                progress, previous = int(row["progress"]), int(before["progress"])
                if progress == 26:
                    seen.add("game over (26)")
                if (
                    progress == 0
                    and row["lesson"] == "0"
                    and row["milestoneLevel"] != before["milestoneLevel"]
                ):
                    seen.add("level up")
                if 0 < progress < previous and progress % 10 == 0:
                    seen.add("back button")
            for row in session_rows:
                if row["milestone"] == "showcase" and row["progress"] == "0":
                    assert row["lesson"] == "0"
                    seen.add("S2 wraps to 0")
    assert {"game over (26)", "level up", "back button"} <= seen


def test_a_buddy_has_their_own_lesson_tracking_export(landed_default):
    buddies = {
        entry["id"]
        for _, _, event in landed_default.events()
        for entry in event["context"]["cdata"]
        if entry["type"] == "Buddy User"
    }
    files = _csv_files(landed_default)
    with_file = [buddy for buddy in buddies if _file_name(buddy) in files]
    assert with_file and all("/" in buddy for buddy in with_file)
    for buddy in with_file:
        assert {row["userId"] for row in files[_file_name(buddy)]} == {buddy}


def test_lesson_rows_follow_the_steps_last_response_by_seconds(landed_default):
    responses = defaultdict(list)
    for _, _, event in landed_default.responses():
        session = next(e["id"] for e in event["context"]["cdata"] if e["type"] == "ContentSession")
        values = {k: v for item in event["edata"]["values"] for k, v in item.items()}
        if "accuracy_percentage" in values:
            responses[session].append(event["ets"])
    checked = 0
    for rows in _csv_files(landed_default).values():
        for row in rows:
            if int(row["progress"]) % 10 or row["progress"] == "0":
                continue
            ets = responses[row["sessionId"]]
            assert ets, "every CSV session has telemetry"
            created = _epoch_ms(row["createdAt"])
            before = [value for value in ets if value <= created]
            if before and created - max(before) < 10_000:
                assert 3_000 <= created - max(before) < 9_000
                checked += 1
    assert checked > 20


def test_about_five_responses_per_step(landed_default):
    per_session = defaultdict(int)
    for _, _, event in landed_default.responses():
        values = {k for item in event["edata"]["values"] for k in item}
        if "response_text" in values:
            session = next(e["id"] for e in event["context"]["cdata"] if e["type"] == "ContentSession")
            per_session[(session, event["mid"])] = 1
    sessions = defaultdict(int)
    for session, _ in per_session:
        sessions[session] += 1
    steps = defaultdict(int)
    for rows in _csv_files(landed_default).values():
        for row in rows:
            if int(row["progress"]) % 10 == 0 and not (
                row["milestone"] == "practice" and row["lesson"] == "0"
            ):
                steps[row["sessionId"]] += 1
    ratios = [sessions[sid] / count for sid, count in steps.items() if count]
    assert ratios and all(4.0 <= ratio <= 6.0 for ratio in ratios)


def test_some_learners_have_telemetry_but_no_sessions_file(landed_default):
    missing = landed_default.summary.sessions["learners_without_file"]
    assert missing
    csv_names = set(_csv_files(landed_default))
    for user_id in missing:
        assert _file_name(user_id) not in csv_names
        learner = next(x for x in landed_default.summary.learners if x["user_id"] == user_id)
        assert learner["sessions"] > 0
        assert any(event["context"]["did"] == learner["device_id"] for _, _, event in landed_default.events())
    assert landed_default.summary.sessions["rows"] == sum(
        len(rows) for rows in _csv_files(landed_default).values()
    )
