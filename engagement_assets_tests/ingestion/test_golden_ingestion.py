"""Stages 1 and 2 on the golden landing area, through dg.materialize with the real Parquet I/O manager,
on a local folder and on the local S3 server; the result must equal golden/expected/user_responses.csv."""

from __future__ import annotations

import pandas as pd
import pytest

from engagement_assets.storage.store import open_store
from engagement_assets_tests.conftest import upload_folder
from engagement_assets_tests.pipeline import (
    assert_values_equal,
    materialize_drops,
    materialize_learner,
    materialize_learners_batched,
    resources_for,
    stored_frame,
)

DROPS = ["all_telemetry_part1.json", "all_telemetry_part2.jsonl"]
KEYS = ["event_mid", "event_ets"]


def expected_learners(golden) -> list[str]:
    expected = pd.read_csv(golden / "expected" / "user_responses.csv", dtype=str)
    return sorted(expected["user_id"].unique())


def run_golden(instance, golden, storage_url, landing_url, batched: bool):
    resources = resources_for(storage_url, landing_url)
    for result in materialize_drops(
        instance, resources, DROPS, {"ops": {"cleaned_telemetry": {"config": {"chunk_size": 50}}}}
    ):
        assert result.success
    learners = expected_learners(golden)
    if batched:
        assert materialize_learners_batched(instance, resources, learners).success
    else:
        for learner in learners:
            assert materialize_learner(instance, resources, learner).success
    store = open_store(storage_url)
    frames = [stored_frame(store, f"user_responses/{learner}.parquet") for learner in learners]
    for frame in frames:
        assert frame["created_at"].is_monotonic_increasing
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("batched", [False, True], ids=["one-run-per-learner", "one-batched-run"])
def test_golden_user_responses_local(instance, golden, tmp_path, batched):
    actual = run_golden(instance, golden, str(tmp_path / "warehouse"), str(golden / "landing"), batched)
    assert_values_equal(actual, golden / "expected" / "user_responses.csv", KEYS)


def test_golden_user_responses_on_s3(instance, golden, s3, bucket):
    upload_folder(s3, golden / "landing" / "telemetry", bucket, "landing/telemetry")
    actual = run_golden(instance, golden, f"s3://{bucket}/warehouse", f"s3://{bucket}/landing", batched=True)
    assert_values_equal(actual, golden / "expected" / "user_responses.csv", KEYS)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="warehouse/")["Contents"]
    keys = {item["Key"] for item in listed}
    assert "warehouse/cleaned_telemetry/all_telemetry_part1.json/part-00000.parquet" in keys
    assert {f"warehouse/user_responses/{u}.parquet" for u in expected_learners(golden)} <= keys
