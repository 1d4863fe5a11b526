"""response_audio as users run it: the golden recordings copied locally and on S3, metadata, the
failure-rate check, re-runs that skip, and one worker pool for a batch of learners."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from engagement_assets.audio.assets import FAILURE_RATE_CHECK, response_audio
from engagement_assets.responses.assets import user_responses
from engagement_assets.storage.store import open_store
from engagement_assets_tests.conftest import upload_folder
from engagement_assets_tests.faults import FaultProxy
from engagement_assets_tests.ingestion.test_golden_ingestion import DROPS, expected_learners
from engagement_assets_tests.pipeline import (
    materialize_drops,
    materialize_learners_batched,
    resources_for,
    stored_frame,
)

AUDIO = ("landing", "audio", "all-prod-storage")


def metadata_of(result) -> dict:
    """A batched run records one materialization per learner: each with its own numbers, and the run's
    under `batch/`. Returns the run's."""
    events = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("response_audio")
    ]
    assert len(events) == 4
    batch = {}
    for event in events:
        metadata = {key: value.value for key, value in event.materialization.metadata.items()}
        batch.update(
            {key[len("batch/") :]: value for key, value in metadata.items() if key.startswith("batch/")}
        )
    return batch


def run(instance, golden, storage_url, audio_url):
    resources = resources_for(storage_url, str(golden / "landing"), audio_source_url=audio_url)
    materialize_drops(instance, resources, DROPS)
    learners = expected_learners(golden)
    result = materialize_learners_batched(instance, resources, learners, (user_responses, response_audio))
    assert result.success
    store = open_store(storage_url)
    manifest = pd.concat(
        [stored_frame(store, f"response_audio/{u}.parquet") for u in learners], ignore_index=True
    )
    return result, manifest, store


def test_golden_recordings_are_copied_with_a_manifest(instance, golden, tmp_path):
    audio = golden.joinpath(*AUDIO)
    result, manifest, _ = run(instance, golden, str(tmp_path / "w"), str(audio))
    assert len(manifest) == 251  # one row per response
    statuses = manifest["status"].value_counts().to_dict()
    assert statuses.get("no_audio") == manifest["audio_link"].isna().sum()
    stored = manifest[manifest["status"] == "stored"]
    assert len(stored) == sum(1 for link in manifest["audio_link"].dropna() if (audio / link).exists())
    assert statuses.get("missing", 0) == len(manifest) - statuses["no_audio"] - len(stored)
    for row in stored.head(5).itertuples():
        assert Path(row.storage_path).read_bytes() == (audio / row.audio_link).read_bytes()
    assert set(stored["format"]) <= {"wav", "webm"}
    meta = metadata_of(result)
    assert meta["failure_rate"] == 0.0 and "| stored |" in meta["by_status"]
    evaluated = [c for c in result.get_asset_check_evaluations() if c.check_name == FAILURE_RATE_CHECK]
    assert evaluated and all(check.passed for check in evaluated)
    assert sorted(check.partition for check in evaluated) == sorted(expected_learners(golden))


def test_on_s3_with_a_failing_object_and_a_rerun_that_skips(
    instance, golden, s3, s3_endpoint, bucket, monkeypatch
):
    upload_folder(s3, golden.joinpath(*AUDIO), bucket, "audio-bucket")
    with FaultProxy(s3_endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        proxy.plan("zAcNYpae14aBWtRKe7zR0mVu3YtjgG5K-1749388584000-0.wav", "500", "500", "500")
        result, manifest, _ = run(instance, golden, f"s3://{bucket}/w", f"s3://{bucket}/audio-bucket")
        failed = manifest[manifest["status"] == "failed"]
        assert failed["audio_link"].str.contains("1749388584000-0").all() and len(failed) == 1
        meta = metadata_of(result)
        assert 0 < meta["failure_rate"] < 0.05
        _, manifest_again, _ = run(instance, golden, f"s3://{bucket}/w", f"s3://{bucket}/audio-bucket")
        statuses = manifest_again["status"].value_counts().to_dict()
        assert statuses["stored"] == 1  # the clip that failed before
        assert statuses["skipped_existing"] == (manifest["status"] == "stored").sum()
