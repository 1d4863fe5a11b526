"""recording_retention as users run it: the keep default, a purge that leaves the recordings manifest as
response_audio wrote it, and later runs that neither fetch a purged clip again nor lose its analysis."""

from __future__ import annotations

import shutil

import dagster as dg
import pandas as pd

from engagement_assets.analysis.assets import audio_analysis
from engagement_assets.audio.assets import response_audio
from engagement_assets.platform.resources import build_resources
from engagement_assets.responses.assets import user_responses
from engagement_assets.retention.assets import recording_retention
from engagement_assets.settings import Settings
from engagement_assets.storage.store import open_store
from engagement_assets_tests.ingestion.test_golden_ingestion import DROPS
from engagement_assets_tests.pipeline import materialize_drops, materialize_learners_batched, stored_frame

LEARNERS = ["2698014209", "5297880197"]
STAGES = (user_responses, response_audio, audio_analysis, recording_retention)


def resources_for(tmp_path, golden, monkeypatch, retention: str) -> dict:
    audio = tmp_path / "audio"
    if not audio.exists():
        shutil.copytree(golden / "landing" / "audio" / "all-prod-storage", audio)
    monkeypatch.setenv("ENGAGEMENT_STORAGE_URL", str(tmp_path / "w"))
    monkeypatch.setenv("ENGAGEMENT_LANDING_URL", str(golden / "landing"))
    monkeypatch.setenv("AUDIO_SOURCE_URL", str(audio))
    monkeypatch.setenv("ENGAGEMENT_AUDIO_RETENTION", retention)
    return build_resources(Settings.from_env())


def stored(tmp_path, asset, learner) -> pd.DataFrame:
    return stored_frame(open_store(tmp_path / "w"), f"{asset}/{learner}.parquet")


def clips_held(tmp_path, learner) -> list:
    return [path for path in (tmp_path / "w" / "recordings" / learner).rglob("*") if path.is_file()]


def batch_metadata(result, asset=recording_retention) -> dict:
    (event, *_) = [e for e in result.get_asset_materialization_events() if e.asset_key == asset.key]
    metadata = event.materialization.metadata
    return {k.removeprefix("batch/"): v.value for k, v in metadata.items() if k.startswith("batch/")}


def test_by_default_every_clip_is_held(instance, golden, tmp_path, monkeypatch):
    resources = resources_for(tmp_path, golden, monkeypatch, "keep")
    materialize_drops(instance, resources, DROPS)
    result = materialize_learners_batched(instance, resources, LEARNERS, STAGES)
    assert result.success and batch_metadata(result)["clips_deleted"] == 0
    for learner in LEARNERS:
        table = stored(tmp_path, "recording_retention", learner)
        manifest = stored(tmp_path, "response_audio", learner)
        stored_clips = manifest["status"].isin(["stored", "skipped_existing"])
        assert (
            (table["state"] == "held").sum() == stored_clips.sum() == len(clips_held(tmp_path, learner)) > 0
        )


def test_a_purge_deletes_analysed_clips_and_leaves_the_manifest_as_it_was(
    instance, golden, tmp_path, monkeypatch
):
    resources = resources_for(tmp_path, golden, monkeypatch, "purge_after_analysis")
    materialize_drops(instance, resources, DROPS)
    assert materialize_learners_batched(instance, resources, LEARNERS, STAGES[:-1]).success
    manifests = {learner: stored(tmp_path, "response_audio", learner) for learner in LEARNERS}
    held = sum(len(clips_held(tmp_path, learner)) for learner in LEARNERS)

    result = materialize_learners_batched(instance, resources, LEARNERS, (recording_retention,))
    assert batch_metadata(result)["clips_deleted"] == held > 0
    for learner in LEARNERS:
        assert clips_held(tmp_path, learner) == []
        pd.testing.assert_frame_equal(stored(tmp_path, "response_audio", learner), manifests[learner])
        table = stored(tmp_path, "recording_retention", learner)
        purged = table[table["state"] == "purged"]
        assert len(purged) and purged["sha256"].notna().all() and purged["bytes"].gt(0).all()
    (first, *_) = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == recording_retention.key and e.materialization.partition == LEARNERS[0]
    ]
    assert first["clips_deleted"].value == len(purged_of(tmp_path, LEARNERS[0]))


def purged_of(tmp_path, learner) -> pd.DataFrame:
    table = stored(tmp_path, "recording_retention", learner)
    return table[table["state"] == "purged"]


def test_after_a_purge_clips_are_not_fetched_again_and_keep_their_analysis(
    instance, golden, tmp_path, monkeypatch
):
    resources = resources_for(tmp_path, golden, monkeypatch, "purge_after_analysis")
    materialize_drops(instance, resources, DROPS)
    assert materialize_learners_batched(instance, resources, LEARNERS, STAGES).success
    analyses = {learner: stored(tmp_path, "audio_analysis", learner) for learner in LEARNERS}
    copied = {learner: stored(tmp_path, "response_audio", learner)["status"] for learner in LEARNERS}
    shutil.rmtree(tmp_path / "audio")  # a fetch would now find nothing: status missing

    again = materialize_learners_batched(instance, resources, LEARNERS, STAGES)
    assert again.success and batch_metadata(again)["clips_deleted"] == 0
    for learner in LEARNERS:
        manifest = stored(tmp_path, "response_audio", learner)
        assert manifest["status"].tolist() == copied[learner].replace("stored", "purged").tolist()
        assert clips_held(tmp_path, learner) == []
        pd.testing.assert_frame_equal(stored(tmp_path, "audio_analysis", learner), analyses[learner])


def test_back_on_keep_the_purged_clips_are_fetched_again(instance, golden, tmp_path, monkeypatch):
    purging = resources_for(tmp_path, golden, monkeypatch, "purge_after_analysis")
    materialize_drops(instance, purging, DROPS)
    assert materialize_learners_batched(instance, purging, LEARNERS, STAGES).success
    keeping = resources_for(tmp_path, golden, monkeypatch, "keep")
    assert materialize_learners_batched(instance, keeping, LEARNERS, STAGES).success
    for learner in LEARNERS:
        assert "purged" not in set(stored(tmp_path, "response_audio", learner)["status"])
        assert set(stored(tmp_path, "recording_retention", learner)["state"]) <= {"held", "not_stored"}
        assert clips_held(tmp_path, learner)


def test_the_run_summary_names_the_policy(instance, golden, tmp_path, monkeypatch):
    resources = resources_for(tmp_path, golden, monkeypatch, "purge_after_analysis")
    materialize_drops(instance, resources, DROPS)
    result = materialize_learners_batched(instance, resources, LEARNERS, STAGES)
    meta = batch_metadata(result)
    assert meta["policy"] == "purge_after_analysis" and meta["learners"] == len(LEARNERS)
    assert isinstance(meta["by_state"], str) and "purged" in meta["by_state"]
    assert dg.AssetKey("recording_retention") == recording_retention.key
