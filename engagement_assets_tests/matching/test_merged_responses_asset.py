"""merged_responses and its checks as users run them from the UI."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from engagement_assets.analysis.assets import audio_analysis
from engagement_assets.matching.assets import MATCHED_SHARE_CHECK, OWN_SESSION_CHECK, merged_responses
from engagement_assets.responses.assets import user_responses
from engagement_assets_tests.ingestion.test_golden_ingestion import DROPS
from engagement_assets_tests.pipeline import materialize_drops, materialize_learner, resources_for

LEARNER = "2698014209"


@pytest.fixture
def landing(tmp_path, golden):
    folder = tmp_path / "landing"
    shutil.copytree(golden / "landing" / "telemetry", folder / "telemetry")
    shutil.copytree(golden / "landing" / "sessions", folder / "sessions")
    return folder


def run_learner(instance, tmp_path, landing, learner=LEARNER, **settings):
    resources = resources_for(str(tmp_path / "w"), str(landing), **settings)
    materialize_drops(instance, resources, DROPS)
    return materialize_learner(instance, resources, learner, (user_responses, merged_responses))


def merged_metadata(result) -> dict:
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("merged_responses")
    ]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_metadata_and_checks_under_each_strategy(instance, tmp_path, landing):
    nearest = run_learner(instance, tmp_path, landing)
    meta = merged_metadata(nearest)
    assert (meta["strategy"], meta["matched"], meta["unmatched"]) == ("nearest", 33, 0)
    assert meta["placed_differently_by_session_forward"] == 10
    assert checks(nearest)[MATCHED_SHARE_CHECK].passed and checks(nearest)[OWN_SESSION_CHECK].passed

    forward = run_learner(instance, tmp_path, landing, match_strategy="session_forward")
    meta = merged_metadata(forward)
    assert meta["strategy"] == "session_forward" and meta["placed_differently_by_nearest"] == 10


def test_a_learner_without_a_sessions_file_is_unmatched_not_an_error(instance, tmp_path, landing):
    (landing / "sessions" / f"{LEARNER}_learnerai_data.csv").unlink()
    result = run_learner(instance, tmp_path, landing)
    assert merged_metadata(result)["unmatched"] == 33
    assert not checks(result)[MATCHED_SHARE_CHECK].passed
    assert checks(result)[MATCHED_SHARE_CHECK].severity == dg.AssetCheckSeverity.WARN


def test_a_sessions_file_missing_a_column_fails_naming_it(instance, tmp_path, landing):
    path = landing / "sessions" / f"{LEARNER}_learnerai_data.csv"
    path.write_text(path.read_text().replace("progress", "progres", 1))
    with pytest.raises(
        dg.Failure, match=rf"{LEARNER}_learnerai_data\.csv: missing required column\(s\) progress"
    ):
        run_learner(instance, tmp_path, landing)


def test_audio_analysis_explains_what_to_configure(instance, tmp_path, landing):
    resources = resources_for(str(tmp_path / "w"), str(landing))
    materialize_drops(instance, resources, DROPS)
    with pytest.raises(dg.Failure, match="materialize response_audio first"):
        materialize_learner(instance, resources, LEARNER, (user_responses, audio_analysis))
    resources = resources_for(str(tmp_path / "w"), str(landing), analyzer="import")
    with pytest.raises(dg.Failure, match="needs ANALYSIS_IMPORT_URL"):
        materialize_learner(instance, resources, LEARNER, (user_responses, audio_analysis))
