"""Stages 3, 5 (import analyzer) and 6 on the golden landing area through dg.materialize, with
golden/analysis_fixture.csv imported as the analysis: merged_responses.csv and phase_features.csv exactly
(values), and the all-learner export with the original columns in order."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from engagement_assets.analysis.assets import audio_analysis
from engagement_assets.engagement_pipeline import ASSETS
from engagement_assets.features.assets import phase_features, phase_level_engagement
from engagement_assets.features.phases import FEATURE_COLUMNS, ORIGINAL_COLUMNS
from engagement_assets.matching.assets import merged_responses
from engagement_assets.responses.assets import user_responses
from engagement_assets.storage.store import open_store
from engagement_assets_tests.conftest import upload_folder
from engagement_assets_tests.ingestion.test_golden_ingestion import DROPS, expected_learners
from engagement_assets_tests.pipeline import (
    assert_values_equal,
    materialize_drops,
    materialize_learner,
    materialize_learners_batched,
    resources_for,
    stored_frame,
)

PER_LEARNER = (user_responses, merged_responses, audio_analysis, phase_features)
FEATURE_KEYS = ["UserId", "SessionId", "MilestoneLevel", "Phase"]


def run_pipeline(instance, golden, storage_url, landing_url, import_url, batched=True, **settings):
    resources = resources_for(
        storage_url, landing_url, analyzer="import", analysis_import_url=import_url, **settings
    )
    assert all(result.success for result in materialize_drops(instance, resources, DROPS))
    learners = expected_learners(golden)
    if batched:
        assert materialize_learners_batched(instance, resources, learners, PER_LEARNER).success
    else:
        for learner in learners:
            assert materialize_learner(instance, resources, learner, PER_LEARNER).success
    assert dg.materialize(
        ASSETS, selection=[phase_level_engagement], instance=instance, resources=resources
    ).success
    store = open_store(storage_url)

    def gather(asset):
        return pd.concat([stored_frame(store, f"{asset}/{u}.parquet") for u in learners], ignore_index=True)

    return store, gather


@pytest.mark.parametrize("batched", [True, False], ids=["one-batched-run", "one-run-per-learner"])
def test_golden_merged_and_phase_features_local(instance, golden, tmp_path, batched):
    _, gather = run_pipeline(
        instance,
        golden,
        str(tmp_path / "w"),
        str(golden / "landing"),
        str(golden / "analysis_fixture.csv"),
        batched,
    )
    assert_values_equal(
        gather("merged_responses"), golden / "expected" / "merged_responses.csv", ["event_mid", "event_ets"]
    )
    assert_values_equal(gather("phase_features"), golden / "expected" / "phase_features.csv", FEATURE_KEYS)
    export = pd.read_csv(
        tmp_path / "w" / "exports" / "phase_level_engagement_full.csv", dtype={"UserId": str}
    )
    assert tuple(export.columns) == FEATURE_COLUMNS
    assert tuple(export.columns[: len(ORIGINAL_COLUMNS)]) == ORIGINAL_COLUMNS
    assert_values_equal(
        export[list(pd.read_csv(golden / "expected" / "phase_features.csv", nrows=0).columns)].assign(
            start_time=lambda f: pd.to_datetime(f.start_time),
            end_time=lambda f: pd.to_datetime(f.end_time),
            first_response_at=lambda f: pd.to_datetime(f.first_response_at),
        ),
        golden / "expected" / "phase_features.csv",
        FEATURE_KEYS,
    )


def test_golden_pipeline_on_s3(instance, golden, s3, bucket):
    upload_folder(s3, golden / "landing", bucket, "landing")
    s3.upload_file(str(golden / "analysis_fixture.csv"), bucket, "imports/analysis.csv")
    store, gather = run_pipeline(
        instance, golden, f"s3://{bucket}/w", f"s3://{bucket}/landing", f"s3://{bucket}/imports/analysis.csv"
    )
    assert_values_equal(gather("phase_features"), golden / "expected" / "phase_features.csv", FEATURE_KEYS)
    assert store.exists("exports/phase_level_engagement_full.csv")
