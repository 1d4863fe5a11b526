"""merged_responses and its checks as users run them from the UI."""

from __future__ import annotations

import re
import shutil

import dagster as dg
import pytest

from engagement_assets.analysis.assets import audio_analysis
from engagement_assets.matching.assets import (
    MATCHED_SHARE_CHECK,
    OWN_SESSION_CHECK,
    READABLE_EXPORTS_CHECK,
    merged_responses,
)
from engagement_assets.responses.assets import user_responses
from engagement_assets_tests.ingestion.test_golden_ingestion import DROPS
from engagement_assets_tests.pipeline import (
    materialize_drops,
    materialize_learner,
    materialize_learners_batched,
    resources_for,
)

LEARNER = "2698014209"
OTHER = "5297880197"


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


def checks(result, learner: str = LEARNER) -> dict:
    """The learner's check evaluations in the run, by check name."""
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.partition == learner}


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


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda text: text.replace("progress", "progres", 1), r"missing required column\(s\) progress"),
        (lambda text: text + '"an unclosed quote, then\n', "unreadable"),
        (lambda text: "\x00\xff" * 40, "unreadable"),
    ],
    ids=["missing column", "ragged", "binary"],
)
def test_an_unreadable_sessions_file_costs_only_its_learner(instance, tmp_path, landing, damage, reason):
    path = landing / "sessions" / f"{LEARNER}_learnerai_data.csv"
    path.write_text(damage(path.read_text()), encoding="latin-1")
    resources = resources_for(str(tmp_path / "w"), str(landing))
    materialize_drops(instance, resources, DROPS)
    result = materialize_learners_batched(
        instance, resources, [LEARNER, OTHER], (user_responses, merged_responses)
    )
    assert result.success
    metadata = {
        event.partition: {key: value.value for key, value in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("merged_responses")
    }
    assert re.search(reason, metadata[LEARNER]["sessions_file"]) and metadata[LEARNER]["matched"] == 0
    assert metadata[OTHER]["sessions_file"] == "read" and metadata[OTHER]["matched"] > 0
    readable = checks(result)[READABLE_EXPORTS_CHECK]
    assert not readable.passed and readable.severity == dg.AssetCheckSeverity.ERROR
    assert readable.metadata["learner"].value == LEARNER
    assert re.search(reason, readable.metadata["sessions_file"].value)
    assert checks(result, OTHER)[READABLE_EXPORTS_CHECK].passed
    # What the UI shows on the check: a status per learner's partition, against their latest materialization.
    key = dg.AssetCheckKey(dg.AssetKey("merged_responses"), READABLE_EXPORTS_CHECK)
    shown = {
        info.partition_key: info for info in instance.event_log_storage.get_asset_check_partition_info([key])
    }
    assert {learner: info.latest_execution_status.value for learner, info in shown.items()} == {
        LEARNER: "FAILED",
        OTHER: "SUCCEEDED",
    }
    assert all(info.is_current for info in shown.values())


def test_audio_analysis_explains_what_to_configure(instance, tmp_path, landing):
    resources = resources_for(str(tmp_path / "w"), str(landing))
    materialize_drops(instance, resources, DROPS)
    with pytest.raises(dg.Failure, match="materialize response_audio first"):
        materialize_learner(instance, resources, LEARNER, (user_responses, audio_analysis))
    resources = resources_for(str(tmp_path / "w"), str(landing), analyzer="import")
    with pytest.raises(dg.Failure, match="needs ANALYSIS_IMPORT_URL"):
        materialize_learner(instance, resources, LEARNER, (user_responses, audio_analysis))
