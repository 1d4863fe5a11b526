"""The cohorts group on the golden pipeline, with the real instance and I/O manager: every learner's
profile matches their stored responses, and the comparison covers each cohort with its sample sizes."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from engagement_assets.analysis.assets import audio_analysis
from engagement_assets.audio.assets import response_audio
from engagement_assets.cohorts.assets import COHORT_ASSETS
from engagement_assets.cohorts.jobs import cohort_backfill
from engagement_assets.cohorts.profiles import OWN, SHARED
from engagement_assets.engagement_pipeline import ASSETS
from engagement_assets.features.assets import phase_features, phase_level_engagement
from engagement_assets.matching.assets import merged_responses
from engagement_assets.prediction.assets import engagement_training_set
from engagement_assets.responses.assets import user_responses
from engagement_assets.storage.store import open_store
from engagement_assets_tests.ingestion.test_golden_ingestion import DROPS, expected_learners
from engagement_assets_tests.pipeline import (
    materialize_drops,
    materialize_learners_batched,
    resources_for,
    stored_frame,
)

CONFIG = {
    "ops": {"cohort_comparison": {"config": {"attribute": "latest_milestone_level", "min_learners": 2}}}
}


def golden_learners(instance, golden, tmp_path, stages) -> tuple[dict, list[str]]:
    """The golden drops cleaned and `stages` run for every learner; the resources and the learners."""
    resources = resources_for(
        str(tmp_path / "w"),
        str(golden / "landing"),
        audio_source_url=str(golden / "landing" / "audio" / "all-prod-storage"),
    )
    materialize_drops(instance, resources, DROPS)
    learners = expected_learners(golden)
    assert materialize_learners_batched(instance, resources, learners, stages).success
    return resources, learners


def test_profiles_describe_each_learner_and_the_comparison_counts_them(instance, golden, tmp_path):
    stages = (user_responses, merged_responses, response_audio, audio_analysis, phase_features)
    resources, learners = golden_learners(instance, golden, tmp_path, stages)
    result = dg.materialize(
        [*ASSETS, engagement_training_set, *COHORT_ASSETS],
        selection=[phase_level_engagement, engagement_training_set, *COHORT_ASSETS],
        instance=instance,
        resources=resources,
        run_config=CONFIG,
    )
    assert result.success
    store = open_store(tmp_path / "w")
    profiles = stored_frame(store, "learner_profiles.parquet").set_index("UserId")
    assert sorted(profiles.index) == sorted(learners)
    for learner in learners:
        responses = stored_frame(store, f"user_responses/{learner}.parquet")
        profile = profiles.loc[learner]
        assert profile["responses"] == len(responses)
        assert profile["first_seen"] == responses["event_ets"].min()
        assert profile["sessions"] == responses["session_id"].nunique()
        assert profile["app_build"].startswith("all.") and profile["device"] in {SHARED, OWN}
    comparison = stored_frame(store, "cohort_comparison.parquet")
    levels = set(profiles["latest_milestone_level"].dropna())
    assert set(comparison["cohort"]) == levels and set(comparison["measure"]) == {
        "accuracy",
        "engagement",
        "stopping_rate",
    }
    sizes = comparison[comparison["measure"] == "accuracy"].set_index("cohort")["learners"]
    table = stored_frame(store, "phase_level_engagement.parquet")
    with_phases = profiles[profiles.index.isin(table["UserId"])]
    assert sizes.to_dict() == with_phases["latest_milestone_level"].value_counts().to_dict()
    assert pd.api.types.is_float_dtype(comparison["difference"])


def test_the_cohort_backfill_job_requests_one_backfill_of_exactly_the_cohort(instance, golden, tmp_path):
    resources, _ = golden_learners(instance, golden, tmp_path, (user_responses, merged_responses))
    defs = dg.Definitions(
        assets=[*ASSETS, engagement_training_set, *COHORT_ASSETS], jobs=[cohort_backfill], resources=resources
    )
    profiles = dg.materialize(
        [*ASSETS, engagement_training_set, *COHORT_ASSETS],
        selection=[COHORT_ASSETS[0]],
        instance=instance,
        resources=resources,
    )
    assert profiles.success
    table = stored_frame(open_store(tmp_path / "w"), "learner_profiles.parquet")
    level = table["latest_milestone_level"].dropna().iloc[0]
    expected = sorted(table.loc[table["latest_milestone_level"] == level, "UserId"])
    config = {"latest_milestone_level": level, "assets": ["merged_responses", "phase_features"]}
    run = defs.resolve_job_def("cohort_backfill").execute_in_process(
        instance=instance, run_config={"ops": {"request_cohort_backfill": {"config": config}}}
    )
    assert run.success
    (backfill,) = instance.get_backfills()
    assert backfill.tags["engagement/cohort"] == f"latest_milestone_level={level}"
    targeted = backfill.asset_backfill_data.target_subset
    requested = {
        (entry.asset_key.to_user_string(), entry.partition_key)
        for entry in targeted.iterate_asset_partitions()
    }
    assert requested == {(asset, learner) for asset in config["assets"] for learner in expected}


def test_a_cohort_that_matches_nobody_fails_clearly(instance, golden, tmp_path):
    resources, _ = golden_learners(instance, golden, tmp_path, (user_responses, merged_responses))
    assert dg.materialize(
        [*ASSETS, engagement_training_set, *COHORT_ASSETS],
        selection=[COHORT_ASSETS[0]],
        instance=instance,
        resources=resources,
    ).success
    defs = dg.Definitions(
        assets=[*ASSETS, engagement_training_set, *COHORT_ASSETS], jobs=[cohort_backfill], resources=resources
    )
    with pytest.raises(dg.Failure, match="no registered learner matches"):
        defs.resolve_job_def("cohort_backfill").execute_in_process(
            instance=instance,
            run_config={"ops": {"request_cohort_backfill": {"config": {"start_week": "1999-W01"}}}},
        )
    assert instance.get_backfills() == []
