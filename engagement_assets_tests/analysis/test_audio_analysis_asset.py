"""audio_analysis as users run it: the local analyzer by default, Gemini when a key is set (against the
fake server), token and cost metadata, re-materialization at zero calls, and the key kept secret."""

from __future__ import annotations

import dagster as dg
import pytest

from engagement_assets.analysis.assets import audio_analysis
from engagement_assets.audio.assets import response_audio
from engagement_assets.features.assets import phase_features
from engagement_assets.matching.assets import merged_responses
from engagement_assets.platform.resources import build_resources
from engagement_assets.responses.assets import user_responses
from engagement_assets.settings import Settings
from engagement_assets.storage.store import open_store
from engagement_assets_tests.fake_gemini import FakeGemini
from engagement_assets_tests.ingestion.test_golden_ingestion import DROPS
from engagement_assets_tests.pipeline import materialize_drops, materialize_learners_batched, stored_frame

LEARNERS = ["2698014209", "5297880197"]
STAGES = (user_responses, response_audio, audio_analysis)
SECRET = "AIzaSy-secret-test-key-0123456789"


def settings_for(tmp_path, golden, monkeypatch, **env) -> Settings:
    monkeypatch.setenv("ENGAGEMENT_STORAGE_URL", str(tmp_path / "w"))
    monkeypatch.setenv("ENGAGEMENT_LANDING_URL", str(golden / "landing"))
    monkeypatch.setenv("AUDIO_SOURCE_URL", str(golden / "landing" / "audio" / "all-prod-storage"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


def analysis_metadata(result) -> dict:
    """The run's summary (`batch/` keys), which every learner's materialization carries."""
    events = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("audio_analysis")
    ]
    metadata = events[0].materialization.metadata
    return {
        key.removeprefix("batch/"): value.value for key, value in metadata.items() if key.startswith("batch/")
    }


def test_without_a_key_the_local_analyzer_runs_every_stage(instance, golden, tmp_path, monkeypatch):
    resources = build_resources(settings_for(tmp_path, golden, monkeypatch))
    materialize_drops(instance, resources, DROPS)
    stages = (*STAGES, merged_responses, phase_features)
    assert materialize_learners_batched(instance, resources, LEARNERS, stages).success
    frame = stored_frame(open_store(tmp_path / "w"), f"audio_analysis/{LEARNERS[0]}.parquet")
    assert set(frame["analyzer"]) == {"local"} and "analysed" in set(frame["status"])
    features = stored_frame(open_store(tmp_path / "w"), f"phase_features/{LEARNERS[0]}.parquet")
    assert features["avg_EQ"].notna().any()


def test_gemini_with_a_key_costs_are_reported_and_a_rerun_calls_nothing(
    instance, golden, tmp_path, monkeypatch
):
    with FakeGemini(api_keys=[SECRET]) as fake:
        settings = settings_for(
            tmp_path, golden, monkeypatch, GEMINI_API_KEY=SECRET, GEMINI_BASE_URL=fake.url
        )
        resources = build_resources(settings)
        materialize_drops(instance, resources, DROPS)
        first = materialize_learners_batched(instance, resources, LEARNERS, STAGES)
        assert first.success
        meta = analysis_metadata(first)
        calls = len(fake.requests)
        assert meta["analyzer"] == "gemini" and meta["model_calls"] == calls > 0
        assert meta["input_tokens"] > 0 and meta["spent_usd"] > 0 and meta["estimated_usd_before_sending"] > 0
        second = materialize_learners_batched(instance, resources, LEARNERS, (audio_analysis,))
        assert analysis_metadata(second)["model_calls"] == 0 and len(fake.requests) == calls
        assert analysis_metadata(second)["cached_results_used"] == calls
    logs = [str(entry) for run in (first, second) for entry in instance.all_logs(run.run_id)]
    assert not any(SECRET in entry for entry in logs)
    stored = [path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()]  # warehouse and instance
    assert not any(SECRET.encode() in data for data in stored)


def test_an_endpoint_that_echoes_the_key_never_gets_it_stored(instance, golden, tmp_path, monkeypatch):
    with FakeGemini(api_keys=[SECRET]) as fake:
        settings = settings_for(
            tmp_path, golden, monkeypatch, GEMINI_API_KEY=SECRET, GEMINI_BASE_URL=fake.url
        )
        resources = build_resources(settings)
        materialize_drops(instance, resources, DROPS)
        fake.fail_next(*["echo_headers"] * 3)
        result = materialize_learners_batched(instance, resources, LEARNERS, STAGES)
    assert result.success
    frames = [
        stored_frame(open_store(tmp_path / "w"), f"audio_analysis/{learner}.parquet") for learner in LEARNERS
    ]
    errors = [error for frame in frames for error in frame["error"].dropna()]
    assert sum("[redacted]" in error for error in errors) == 3  # the echoed key, taken out of each
    logs = [str(entry) for entry in instance.all_logs(result.run_id)]
    assert not any(SECRET in entry for entry in logs)
    stored = [path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()]  # warehouse and instance
    assert not any(SECRET.encode() in data for data in stored)


def test_a_gemini_analyzer_without_a_key_fails_clearly(instance, golden, tmp_path, monkeypatch):
    resources = build_resources(settings_for(tmp_path, golden, monkeypatch, ENGAGEMENT_ANALYZER="gemini"))
    materialize_drops(instance, resources, DROPS)
    with pytest.raises(dg.Failure, match="needs GEMINI_API_KEY"):
        materialize_learners_batched(instance, resources, LEARNERS, STAGES)
