"""What a data team must be able to trust, across every stage: learners with no audio, no lesson file or no
responses, buddy and token logins, an id that is no safe file name, responses repeated across drops. After
one batched run per stage, every asset's Parquet glob reads in one DuckDB query (no `union_by_name`), every
file has exactly its asset's declared schema, each learner's materialization describes that learner's file,
and every row kept by stage 1 is accounted for in stage 2."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import struct
import wave
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from engagement_assets import learner_id, learner_key
from engagement_assets.engagement_pipeline import ASSETS
from engagement_assets.features.assets import phase_level_engagement
from engagement_assets.ingestion.assets import ATTRIBUTES, CLEANED
from engagement_assets.matching.sessions import sessions_key
from engagement_assets.platform.metadata import declared_schema
from engagement_assets.platform.partitions import register_partitions, users
from engagement_assets.responses.extract import learner_keys
from engagement_assets.storage import layout
from engagement_assets.storage.store import open_store
from engagement_assets_tests.pipeline import (
    PER_LEARNER_STAGES,
    materialize_drops,
    materialize_learners_batched,
    resources_for,
)

NUMERIC = "4829163057"  # audio and a lesson file
NO_AUDIO = "4829163058"  # recordings never captured (target "")
NO_LESSONS = "4829163059"  # no lesson-tracking export
BUDDY = "1234567/7654321"  # a buddy login: their own learner
TOKEN_VIRTUAL_ID = "4829163060"  # only inside the API token in cdata virtualId
HOSTILE = "../../etc/x\tid"  # an id that is no safe file name, in context.uid
SILENT = "9999999999"  # registered by hand, no responses at all
DEFINITIONS = {
    key.path[-1]: asset for asset in ASSETS if isinstance(asset, dg.AssetsDefinition) for key in asset.keys
}
PER_LEARNER = [DEFINITIONS[name] for name in PER_LEARNER_STAGES]
START_MS = 1_749_720_000_000


def token(virtual_id: str) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'virtual_id': int(virtual_id)})}.c2lnbmF0dXJl"


def identity(learner: str) -> tuple[list[dict], dict]:
    """cdata entries and the context/actor fields under which the app would send this learner."""
    if learner == BUDDY:
        return [{"type": "Buddy User", "id": BUDDY}, {"type": "User", "id": "anonymous"}], {}
    if learner == TOKEN_VIRTUAL_ID:
        return [{"type": "virtualId", "id": token(learner)}, {"type": "User", "id": ""}], {}
    if learner == HOSTILE:
        return [{"type": "User", "id": "anonymous"}], {"uid": HOSTILE}
    return [{"type": "virtualId", "id": learner}], {}


def record(learner: str, index: int, audio: bool) -> dict:
    cdata, extra = identity(learner)
    ets = START_MS + index * 20_000
    session = session_of(learner)
    link = f"learner-ai-demo/{session}-{ets}-{index % 5}.wav" if audio else ""
    event = {
        "eid": "RESPONSE",
        "ets": ets,
        "mid": f"RESPONSE:{learner}-{index}",
        "actor": {"id": "device-fingerprint", "type": "User"},
        "context": {
            "cdata": [*cdata, {"type": "language", "id": "en"}, {"type": "ContentSession", "id": session}],
            **extra,
        },
        "edata": {
            "type": "SPEAK",
            "target": link,
            "values": [
                {"original_text": "The cat sat on the mat"},
                {"response_text": "the cat sat on mat"},
                {"accuracy_percentage": 80.0 + index},
            ],
        },
    }
    return {"createdAt": {"$date": ets + 700}, "events": event}


def session_of(learner: str) -> str:
    return hashlib.md5(learner.encode()).hexdigest()


def wav_bytes(seconds: float = 0.6) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(16_000)
        samples = (int(8_000 * math.sin(i / 8)) for i in range(int(16_000 * seconds)))
        clip.writeframes(b"".join(struct.pack("<h", sample) for sample in samples))
    return out.getvalue()


@pytest.fixture
def landing(tmp_path) -> Path:
    root = tmp_path / "landing"
    (root / "telemetry").mkdir(parents=True)
    audio_root = root / "audio"
    learners = {
        NUMERIC: True,
        NO_AUDIO: False,
        NO_LESSONS: True,
        BUDDY: True,
        TOKEN_VIRTUAL_ID: True,
        HOSTILE: True,
    }
    records = {learner: [record(learner, i, audio) for i in range(4)] for learner, audio in learners.items()}
    first = [r for rows in records.values() for r in rows[:3]]
    # The second drop repeats each learner's third response (the SDK re-sent that batch) and adds a fourth.
    second = [r for rows in records.values() for r in rows[2:]]
    (root / "telemetry" / "drop-1.jsonl").write_text("\n".join(json.dumps(r) for r in first))
    (root / "telemetry" / "drop...2.json").write_text(json.dumps(second, indent=2))
    clip = wav_bytes()
    for rows in records.values():
        for row in rows:
            link = row["events"]["edata"]["target"]
            if link:
                (audio_root / link).parent.mkdir(parents=True, exist_ok=True)
                (audio_root / link).write_bytes(clip)
    # One lesson row a few seconds after the fourth response: every response but the first is within 5 min.
    saved = datetime.fromtimestamp((START_MS + 70_000) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
    for learner in set(learners) - {NO_LESSONS}:
        path = root / sessions_key(learner)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "userId,sessionId,milestoneLevel,lesson,progress,createdAt\n"
            f'"{learner}",{session_of(learner)},m1,1,10,{saved}\n'
        )
    return root


def test_every_asset_keeps_one_schema_correct_metadata_and_every_learner(instance, tmp_path, landing):
    storage = tmp_path / "warehouse"
    resources = resources_for(str(storage), str(landing), audio_source_url=str(landing / "audio"))
    drops = [learner_key(name) for name in ("drop-1.jsonl", "drop...2.json")]
    cleaned = materialize_drops(instance, resources, drops)
    store = open_store(storage)

    found = learner_keys(store)
    expected_ids = {NUMERIC, NO_AUDIO, NO_LESSONS, BUDDY, TOKEN_VIRTUAL_ID, HOSTILE}
    assert {learner_id(key) for key in found} == expected_ids  # nobody refused, nobody mis-identified
    register_partitions(instance, users, [*found, SILENT])
    result = materialize_learners_batched(instance, resources, [*found, SILENT], PER_LEARNER)
    assert result.success
    assert dg.materialize(
        ASSETS, selection=[phase_level_engagement], instance=instance, resources=resources
    ).success

    for name in ("user_responses", "merged_responses", "response_audio", "audio_analysis", "phase_features"):
        schema = declared_schema(DEFINITIONS[name].metadata_by_key[dg.AssetKey(name)])
        glob = f"{storage}/{layout.partition_files_glob(name)}"
        ((rows,),) = query(f"SELECT count(*) FROM read_parquet('{glob}')")  # no union_by_name
        files = layout.partition_file_keys(store, name)
        assert len(files) == len(found) + 1, name  # the learner with no responses has a (typed, empty) file
        for key in files:
            assert pq.read_schema(storage / key).remove_metadata() == schema, key
        assert rows == sum(pq.read_metadata(storage / key).num_rows for key in files)
        _assert_metadata_describes_each_file(result, name, store)
    engagement_schema = declared_schema(
        DEFINITIONS["phase_level_engagement"].metadata_by_key[phase_level_engagement.key]
    )
    assert (
        pq.read_schema(storage / layout.table_file("phase_level_engagement")).remove_metadata()
        == engagement_schema
    )
    attributes_schema = declared_schema(DEFINITIONS["learner_attributes"].metadata_by_key[ATTRIBUTES])
    attribute_files = layout.partition_file_keys(store, ATTRIBUTES.path[-1])
    assert attribute_files and all(
        pq.read_schema(storage / key).remove_metadata() == attributes_schema for key in attribute_files
    )
    attributes_glob = f"{storage}/{layout.partition_files_glob(ATTRIBUTES.path[-1])}"
    assert {
        row[0] for row in query(f"SELECT DISTINCT user_id FROM read_parquet('{attributes_glob}')")
    } == expected_ids
    cleaned_glob = f"{storage}/{layout.partition_parts_glob('cleaned_telemetry')}"
    assert query(f"SELECT count(*) FROM read_parquet('{cleaned_glob}')") == [(30,)]

    responses = query(
        f"SELECT user_id, user_id_source, count(*) FROM read_parquet('{storage}/user_responses/*.parquet') "
        "GROUP BY ALL"
    )
    assert {(user, source) for user, source, _ in responses} == {
        (NUMERIC, "virtualId"),
        (NO_AUDIO, "virtualId"),
        (NO_LESSONS, "virtualId"),
        (BUDDY, "buddy"),
        (TOKEN_VIRTUAL_ID, "jwt"),
        (HOSTILE, "uid"),
    }
    assert {count for *_, count in responses} == {4}
    assert not any(
        token(TOKEN_VIRTUAL_ID).encode() in path.read_bytes() for path in storage.rglob("*") if path.is_file()
    )

    # Stage 1 kept rows = stage-2 learner rows + copies of responses that both drops hold.
    kept = sum(
        event.materialization.metadata["dagster/row_count"].value
        for run in cleaned
        for event in run.get_asset_materialization_events()
        if event.asset_key == CLEANED
    )
    summary = _batch_summary(result, "user_responses")
    assert summary["rows_carried_from_stored_responses"] == 0
    assert (
        kept
        == summary["rows_read_from_cleaned_drops"]
        == summary["rows"] + summary["duplicates_across_drops"]
    )
    assert (summary["rows"], summary["duplicates_across_drops"]) == (24, 6)

    merged = query(
        f"SELECT UserId, count(SessionId) FROM read_parquet('{storage}/merged_responses/*.parquet') GROUP BY ALL"
    )
    matched = dict(merged)
    assert matched[NO_LESSONS] == 0 and matched[BUDDY] > 0 and matched[TOKEN_VIRTUAL_ID] > 0


def query(sql: str) -> list[tuple]:
    with duckdb.connect() as con:
        return con.sql(sql).fetchall()


def _assert_metadata_describes_each_file(result, asset: str, store) -> None:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    assert events, asset
    for event in events:
        metadata = event.materialization.metadata
        key = layout.partition_file(asset, event.partition)
        assert metadata["storage"].value == store.uri(key), (asset, event.partition)
        assert metadata["dagster/row_count"].value == pq.read_metadata(store.uri(key)).num_rows


def _batch_summary(result, asset: str) -> dict:
    (event, *_) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    metadata = event.materialization.metadata
    return {
        key.removeprefix("batch/"): value.value for key, value in metadata.items() if key.startswith("batch/")
    }
