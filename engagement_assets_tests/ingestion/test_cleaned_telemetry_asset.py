"""cleaned_telemetry as users run it: metadata that tells the story, quarantine in storage, clear failures."""

import gzip
import json
import shutil

import dagster as dg
import pytest

from engagement_assets.ingestion.assets import ATTRIBUTES, CLEANED
from engagement_assets.ingestion.events import LEARNER_ATTRIBUTES_SCHEMA
from engagement_assets.storage import layout
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.store import open_store
from engagement_assets_tests.pipeline import materialize_drops, resources_for, stored_parts


@pytest.fixture
def landing(tmp_path, golden):
    folder = tmp_path / "landing"
    shutil.copytree(golden / "landing" / "telemetry", folder / "telemetry")
    return folder


def metadata_of(result, asset: dg.AssetKey = CLEANED) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == asset]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def test_metadata_counts_every_record(instance, tmp_path, landing):
    (result,) = materialize_drops(
        instance, resources_for(str(tmp_path / "w"), str(landing)), ["all_telemetry_part2.jsonl"]
    )
    meta = metadata_of(result)
    assert meta["records"] == 210
    assert meta["dagster/row_count"] + meta["dropped"] == meta["events"]
    assert "| not_english |" in meta["dropped_by_reason"]
    assert meta["quarantined"] == 0 and "quarantine" not in meta
    assert "RESPONSE:" in meta["preview"]
    assert meta["storage"].rstrip("/").endswith("cleaned_telemetry/all_telemetry_part2.jsonl")


def test_the_same_pass_stores_each_learners_attributes_for_the_drop(instance, tmp_path, landing):
    (result,) = materialize_drops(
        instance, resources_for(str(tmp_path / "w"), str(landing)), ["all_telemetry_part2.jsonl"]
    )
    cleaned, described = metadata_of(result), metadata_of(result, ATTRIBUTES)
    stored = open_store(str(tmp_path / "w"))
    table = read_parquet(stored, [layout.partition_file(ATTRIBUTES.path[-1], "all_telemetry_part2.jsonl")])
    assert table.schema.equals(LEARNER_ATTRIBUTES_SCHEMA)
    frame = table.to_pandas()
    assert described["learners"] == frame["user_id"].nunique() == cleaned["learners"]
    assert described["rows"] == len(frame) and frame["app_id"].notna().all()
    assert (frame["first_seen"] <= frame["last_seen"]).all()


def test_broken_records_are_quarantined_and_the_rest_kept(instance, tmp_path, landing):
    lines = (landing / "telemetry" / "all_telemetry_part2.jsonl").read_bytes().splitlines()
    broken = b"\n".join([*lines[:100], b'{"events": {"eid": "RESP', b"\xff\xfe not utf8", *lines[100:150]])
    (landing / "telemetry" / "broken.jsonl.gz").write_bytes(gzip.compress(broken))
    storage = tmp_path / "w"
    (result,) = materialize_drops(instance, resources_for(str(storage), str(landing)), ["broken.jsonl.gz"])
    meta = metadata_of(result)
    assert meta["records"] == 150 and meta["quarantined"] == 2
    quarantine = storage / "quarantine" / "cleaned_telemetry" / "broken.jsonl.gz.jsonl"
    assert meta["quarantine"] == str(quarantine)
    assert [json.loads(line)["reason"] for line in quarantine.read_text().splitlines()] == [
        "malformed_json",
        "invalid_utf8",
    ]
    assert (
        len(stored_parts(open_store(storage), "cleaned_telemetry/broken.jsonl.gz/"))
        == meta["dagster/row_count"]
    )


def test_a_clean_rerun_removes_the_stale_quarantine_file(instance, tmp_path, landing):
    storage = tmp_path / "w"
    drop = landing / "telemetry" / "d.jsonl"
    drop.write_bytes(b'{"broken\n')
    materialize_drops(instance, resources_for(str(storage), str(landing)), ["d.jsonl"])
    assert (storage / "quarantine" / "cleaned_telemetry" / "d.jsonl.jsonl").exists()
    drop.write_bytes(b'{"events": {"eid": "START"}}\n')
    materialize_drops(instance, resources_for(str(storage), str(landing)), ["d.jsonl"])
    assert not (storage / "quarantine" / "cleaned_telemetry" / "d.jsonl.jsonl").exists()


def test_rechunking_replaces_every_part(instance, tmp_path, landing):
    storage, resources = tmp_path / "w", resources_for(str(tmp_path / "w"), str(landing))
    config = {"ops": {"cleaned_telemetry": {"config": {"chunk_size": 20}}}}
    materialize_drops(instance, resources, ["all_telemetry_part1.json"], config)
    folder = storage / "cleaned_telemetry" / "all_telemetry_part1.json"
    assert len(list(folder.glob("*.parquet"))) == 11
    materialize_drops(instance, resources, ["all_telemetry_part1.json"])
    assert [p.name for p in folder.iterdir()] == ["part-00000.parquet"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_a_file_that_is_not_json_fails_naming_it(instance, tmp_path, landing):
    (landing / "telemetry" / "export.csv").write_text("id,user\n1,2\n")
    with pytest.raises(dg.Failure, match=r"export\.csv: not a JSON array or JSONL export"):
        materialize_drops(instance, resources_for(str(tmp_path / "w"), str(landing)), ["export.csv"])


def test_a_missing_drop_fails_naming_where_it_looked(instance, tmp_path, landing):
    with pytest.raises(dg.Failure, match=r"telemetry drop not found: .*telemetry/gone\.json"):
        materialize_drops(instance, resources_for(str(tmp_path / "w"), str(landing)), ["gone.json"])
