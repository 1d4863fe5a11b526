"""The cohorts group on the golden pipeline, with the real instance and I/O manager: every learner's
profile matches their stored responses, and the comparison covers each cohort with its sample sizes."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from engagement_assets.analysis.assets import audio_analysis
from engagement_assets.audio.assets import response_audio
from engagement_assets.cohorts.assets import COHORT_ASSETS
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


def test_profiles_describe_each_learner_and_the_comparison_counts_them(instance, golden, tmp_path):
    resources = resources_for(
        str(tmp_path / "w"),
        str(golden / "landing"),
        audio_source_url=str(golden / "landing" / "audio" / "all-prod-storage"),
    )
    materialize_drops(instance, resources, DROPS)
    learners = expected_learners(golden)
    stages = (user_responses, merged_responses, response_audio, audio_analysis, phase_features)
    assert materialize_learners_batched(instance, resources, learners, stages).success
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
