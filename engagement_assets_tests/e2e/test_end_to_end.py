"""END-TO-END: the code location served by a real `dagster dev` (webserver, daemon, code server, one
process per run) on 127.0.0.1, against a throwaway SQLite instance built from the repository's
dagster.yaml, driven only through GraphQL. Nobody materializes anything by hand: telemetry files are
dropped into the landing area and the sensors and declarative automation have to produce the golden
outputs (the analysis imported from golden/analysis_fixture.csv).

1. local folders: drops → every asset of every learner → the golden user_responses, merged_responses and
   phase_features, and the all-learner export;
2. a per-learner backfill of merged_responses launched through `launchPartitionBackfill`;
3. the same pipeline with landing, audio and storage on a local S3 server (moto).

These take a few minutes (the daemon's backfill loop ticks every 30 s); `pytest -m "not e2e"` skips them.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import boto3
import pandas as pd
import pytest

from engagement_assets.features.phases import FEATURE_COLUMNS
from engagement_assets.storage import layout
from engagement_assets.storage.store import Store, open_store
from engagement_assets_tests.conftest import upload_folder
from engagement_assets_tests.e2e.server import DagsterServer, Snapshot, start_side_by_side
from engagement_assets_tests.ingestion.test_golden_ingestion import DROPS, expected_learners
from engagement_assets_tests.pipeline import PER_LEARNER_STAGES, assert_values_equal, stored_frame

pytestmark = pytest.mark.e2e

# Each per-learner asset and the per-learner assets it reads: after automation settles, a learner's
# asset must be at least as recent as each of these.
READS = {
    "merged_responses": ("user_responses",),
    "response_audio": ("user_responses",),
    "audio_analysis": ("user_responses", "response_audio"),
    "recording_retention": ("audio_analysis",),
    "phase_features": ("merged_responses", "audio_analysis"),
}
# The groups that follow the all-learner table by declarative automation.
AUTOMATED = (
    "engagement_training_set",
    "engagement_model",
    "learner_risk",
    "engagement_alerts",
    "learner_profiles",
    "cohort_comparison",
    "engagement_dashboard",
)
# The assets with a golden CSV (golden/expected/).
GOLDEN_ASSETS = ("user_responses", "merged_responses", "phase_features")
RESPONSE_KEYS = ["event_mid", "event_ets"]
FEATURE_KEYS = ["UserId", "SessionId", "MilestoneLevel", "Phase"]
SETTLE_TIMEOUT = 360  # seconds; the pipeline takes about two minutes on 2 cores


def expected_materializations(learners: list[str]) -> dict[str, set[str | None]]:
    return {
        "cleaned_telemetry": set(DROPS),
        "learner_attributes": set(DROPS),
        **{asset: set(learners) for asset in PER_LEARNER_STAGES},
        "phase_level_engagement": {None},
        **{asset: {None} for asset in AUTOMATED},
    }


def pipeline_environment(storage: str, landing: str, audio: str, golden: Path) -> dict[str, str]:
    return {
        "ENGAGEMENT_STORAGE_URL": storage,
        "ENGAGEMENT_LANDING_URL": landing,
        "AUDIO_SOURCE_URL": audio,
        "ENGAGEMENT_ANALYZER": "import",
        "ANALYSIS_IMPORT_URL": str(golden / "analysis_fixture.csv"),
        "ENGAGEMENT_SENSOR_INTERVAL_SECONDS": "3",
    }


def drop_file(source: Path, folder: Path) -> None:
    """Land a file the way a producer should: written under a hidden name, then renamed into place, so
    the sensor never sees half a file."""
    scratch = folder / f".{source.name}.partial"
    shutil.copyfile(source, scratch)
    scratch.replace(folder / source.name)


def wait_for_pipeline(server: DagsterServer, learners: list[str]) -> Snapshot:
    return server.wait_until_settled(
        expected_materializations(learners),
        last="phase_level_engagement",
        after=("phase_features",),
        timeout=SETTLE_TIMEOUT,
    )


def gather(store: Store, asset: str, learners: list[str]) -> pd.DataFrame:
    return pd.concat(
        [stored_frame(store, f"{asset}/{learner}.parquet") for learner in learners], ignore_index=True
    )


def assert_golden_outputs(store: Store, golden: Path, learners: list[str], assets=GOLDEN_ASSETS) -> None:
    keys = {
        "user_responses": RESPONSE_KEYS,
        "merged_responses": RESPONSE_KEYS,
        "phase_features": FEATURE_KEYS,
    }
    for asset in assets:
        assert_values_equal(gather(store, asset, learners), golden / "expected" / f"{asset}.csv", keys[asset])


def run_tags(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}


def assert_each_partition_page_describes_its_own_file(deployment, asset: str) -> None:
    """The learners' materializations came from a batched run, yet each names its own file and rows."""
    latest = deployment.server.latest_metadata_by_partition(asset)
    assert sorted(latest) == deployment.learners
    runs = [run_id for run_id, _ in latest.values()]
    assert len(set(runs)) < len(runs), "expected at least one run covering several learners"
    for learner, (_, metadata) in latest.items():
        key = layout.partition_file(asset, learner)
        assert metadata["storage"] == deployment.store.uri(key), learner
        assert metadata["dagster/row_count"] == len(stored_frame(deployment.store, key)), learner


def assert_launched_automatically_and_fresh(settled: Snapshot, learners: list[str]) -> None:
    """Each drop cleaned once by the drop sensor; every learner carried through the per-learner stages by
    the learners sensor in ranged runs (their lesson rows may land later and re-match them through the
    sessions sensor); the all-learner table by its sensor; all runs successful. Once settled,
    every learner's asset is at least as recent as each asset it reads, the all-learner table newer than
    every learner's features."""
    assert settled.missing(expected_materializations(learners)) == {}
    assert [run for run in settled.runs if run["status"] != "SUCCESS"] == [], settled.describe()
    launched_by = {run["runId"]: run_tags(run).get("dagster/sensor_name") for run in settled.runs}
    assert set(launched_by.values()) - {"sessions_sensor"} == {
        "telemetry_drop_sensor",
        "learners_sensor",
        "engagement_table_sensor",
        "downstream_automation",
    }, settled.describe()
    drop_runs = [run for run in settled.runs if launched_by[run["runId"]] == "telemetry_drop_sensor"]
    assert sorted(run_tags(run)["dagster/partition"] for run in drop_runs) == sorted(DROPS)
    refresh_runs = [run for run in settled.runs if launched_by[run["runId"]] == "learners_sensor"]
    assert len(refresh_runs) <= 2 * len(DROPS), f"a ranged run or two per cleaned drop\n{settled.describe()}"
    origins = {
        "cleaned_telemetry": {"telemetry_drop_sensor"},
        "learner_attributes": {"telemetry_drop_sensor"},
        "phase_level_engagement": {"engagement_table_sensor"},
        **{asset: {"downstream_automation"} for asset in AUTOMATED},
        "merged_responses": {"learners_sensor", "sessions_sensor"},
        "phase_features": {"learners_sensor", "sessions_sensor"},
    }
    for event in settled.materializations:
        origin = launched_by[event.run_id]
        assert origin in origins.get(event.asset, {"learners_sensor"}), f"{event} came from {origin}"

    latest: dict[tuple[str, str | None], float] = {}
    for event in settled.materializations:
        key = (event.asset, event.partition)
        latest[key] = max(latest.get(key, 0.0), event.timestamp)
    for asset, parents in READS.items():
        for learner in learners:
            for parent in parents:
                assert latest[asset, learner] >= latest[parent, learner], (
                    f"{asset}[{learner}] is older than {parent}[{learner}]\n{settled.describe()}"
                )
    assert latest["phase_level_engagement", None] >= max(latest["phase_features", u] for u in learners)
    assert all(latest[asset, None] >= latest["phase_level_engagement", None] for asset in AUTOMATED)


class Deployment:
    """A running deployment whose telemetry has landed; `settle()` waits (once) until the sensors and
    automation have carried it through every asset."""

    def __init__(self, server: DagsterServer, store: Store, learners: list[str], home: Path):
        self.server, self.store, self.learners, self.home = server, store, learners, home
        self._dropped_at = time.monotonic()
        self._settled: Snapshot | None = None

    def settle(self) -> Snapshot:
        if self._settled is None:
            self._settled = wait_for_pipeline(self.server, self.learners)
            print(
                f"{self.home.parent.name}: settled {time.monotonic() - self._dropped_at:.0f}s after the drops"
            )
        return self._settled


@pytest.fixture(scope="module")
def local_deployment(tmp_path_factory, golden):
    """Local folders; once the server is up the two golden drops are dropped into `<landing>/telemetry/`."""
    root = tmp_path_factory.mktemp("e2e_local")
    landing, warehouse = root / "landing", root / "warehouse"
    (landing / "telemetry").mkdir(parents=True)
    shutil.copytree(golden / "landing" / "sessions", landing / "sessions")
    shutil.copytree(golden / "landing" / "audio", landing / "audio")
    env = pipeline_environment(
        str(warehouse), str(landing), str(landing / "audio" / "all-prod-storage"), golden
    )
    with DagsterServer(root / "dagster_home", env) as server:
        assert server.snapshot().runs == [], "a run started before anything landed"
        for drop in DROPS:
            drop_file(golden / "landing" / "telemetry" / drop, landing / "telemetry")
        yield Deployment(server, open_store(warehouse), expected_learners(golden), server.home)


@pytest.fixture(scope="module")
def s3_settings(s3_endpoint):
    """The AWS settings of the deployment, in this process too (to read what it wrote), and a fresh bucket."""
    settings = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
        bucket = f"e2e-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)
        yield settings, client, bucket


@pytest.fixture(scope="module")
def s3_deployment(tmp_path_factory, golden, s3_settings):
    """Landing, audio and storage on the local S3 server: sessions and recordings uploaded first, the
    telemetry once the server is up."""
    settings, client, bucket = s3_settings
    landing = golden / "landing"
    upload_folder(client, landing / "sessions", bucket, "landing/sessions")
    upload_folder(client, landing / "audio" / "all-prod-storage", bucket, "audio")
    env = {
        **pipeline_environment(
            f"s3://{bucket}/warehouse", f"s3://{bucket}/landing", f"s3://{bucket}/audio", golden
        ),
        **settings,
    }
    root = tmp_path_factory.mktemp("e2e_s3")
    with DagsterServer(root / "dagster_home", env) as server:
        assert server.snapshot().runs == [], "a run started before anything landed"
        for drop in DROPS:
            client.upload_file(str(landing / "telemetry" / drop), bucket, f"landing/telemetry/{drop}")
        yield Deployment(
            server, open_store(f"s3://{bucket}/warehouse"), expected_learners(golden), server.home
        )


@pytest.fixture(scope="module", autouse=True)
def deployments_side_by_side(request):
    start_side_by_side(request, ("local_deployment", "s3_deployment"))


CHECK_STATUSES = """
query ($path: [String!]!) {
  assetNodes(assetKeys: [{path: $path}]) {
    assetChecksOrError {
      ... on AssetChecks {
        checks { name partitionStatuses { ... on AssetCheckDefaultPartitionStatuses {
          succeededPartitions failedPartitions inProgressPartitions skippedPartitions executionFailedPartitions
        } } }
      }
    }
  }
}
"""


def assert_checks_shown_per_learner(server, asset: str, learners: list[str]) -> None:
    """What the asset's Checks tab shows: every check with a result on every learner's partition, although
    the sensors refreshed the learners in batched runs."""
    (node,) = server.graphql(CHECK_STATUSES, {"path": [asset]})["assetNodes"]
    checks = node["assetChecksOrError"]["checks"]
    assert checks, asset
    for check in checks:
        statuses = check["partitionStatuses"]
        evaluated = sorted(statuses["succeededPartitions"] + statuses["failedPartitions"])
        assert evaluated == sorted(learners), (asset, check["name"], statuses)


def test_dropped_telemetry_flows_through_every_asset_to_the_golden_values(local_deployment, golden):
    deployment = local_deployment
    settled = deployment.settle()
    server, learners = deployment.server, deployment.learners

    # Partitions were registered by the sensors.
    assert sorted(server.partition_keys("cleaned_telemetry")) == sorted(DROPS)
    assert sorted(server.partition_keys("user_responses")) == learners
    assert_launched_automatically_and_fresh(settled, learners)

    # The values: the golden outputs, read from the Parquet files the deployment wrote.
    assert_golden_outputs(deployment.store, golden, learners)
    assert_each_partition_page_describes_its_own_file(deployment, "user_responses")
    for asset in ("merged_responses", "response_audio", "phase_features"):
        assert_checks_shown_per_learner(server, asset, learners)
    export = pd.read_csv(
        deployment.store.open_read("exports/phase_level_engagement_full.csv"), dtype={"UserId": str}
    )
    assert tuple(export.columns) == FEATURE_COLUMNS
    golden_columns = list(pd.read_csv(golden / "expected" / "phase_features.csv", nrows=0).columns)
    assert_values_equal(
        export[golden_columns].assign(
            start_time=lambda f: pd.to_datetime(f.start_time),
            end_time=lambda f: pd.to_datetime(f.end_time),
            first_response_at=lambda f: pd.to_datetime(f.first_response_at),
        ),
        golden / "expected" / "phase_features.csv",
        FEATURE_KEYS,
    )


def test_a_cohort_backfill_launched_through_graphql_rematerializes_exactly_its_learners(
    local_deployment, golden
):
    local_deployment.settle()  # the drops have gone all the way through first
    server = local_deployment.server
    order = server.partition_keys("merged_responses")
    # Two learners that are not neighbours in the partition order, so a backfill run covering a range of
    # partitions would take in a third one.
    chosen = [order[0], order[-1]]
    before = server.snapshot()
    assert before.active_runs() == [] and before.active_backfills() == []
    seen_before = {(event.asset, event.partition, event.run_id) for event in before.materializations}

    # The cohort job (a pasted list of the two learners) requests the backfill, as a user does from the
    # launchpad; the README gives launchPartitionBackfill as the direct GraphQL equivalent.
    config = {"learner_ids": "\n".join(chosen), "assets": ["merged_responses"]}
    server.wait_for_run(
        server.launch_job("cohort_backfill", {"ops": {"request_cohort_backfill": {"config": config}}})
    )
    (tagged,) = server.backfills_tagged("engagement/cohort")
    assert tagged["title"] == "cohort: learner_ids=[2 pasted]"
    backfill = server.wait_for_backfill(tagged["id"])

    assert backfill["status"] == "COMPLETED_SUCCESS"
    assert sorted(backfill["partitionNames"]) == sorted(chosen)
    assert [key["path"] for key in backfill["assetSelection"]] == [["merged_responses"]]
    backfill_runs = {run["runId"] for run in backfill["runs"]}
    assert backfill_runs, backfill
    assert all(run["status"] == "SUCCESS" for run in backfill["runs"]), backfill

    after = server.snapshot()
    new = [
        event
        for event in after.materializations
        if (event.asset, event.partition, event.run_id) not in seen_before and event.run_id in backfill_runs
    ]
    assert sorted((event.asset, event.partition) for event in new) == sorted(
        ("merged_responses", learner) for learner in chosen
    ), "the backfill should write merged_responses for exactly the chosen learners"
    # No other merged_responses partition changed meanwhile.
    changed = {
        event.partition
        for event in after.materializations
        if event.asset == "merged_responses"
        and (event.asset, event.partition, event.run_id) not in seen_before
    }
    assert changed == set(chosen)
    # Re-matching gives the same (golden) rows.
    assert_golden_outputs(local_deployment.store, golden, local_deployment.learners, ("merged_responses",))


def test_the_same_pipeline_on_s3(s3_deployment, s3_settings, golden):
    deployment = s3_deployment
    settled = deployment.settle()
    assert_launched_automatically_and_fresh(settled, deployment.learners)
    assert_golden_outputs(deployment.store, golden, deployment.learners)
    assert deployment.store.exists("exports/phase_level_engagement_full.csv")
    _, client, bucket = s3_settings
    recordings = client.list_objects_v2(Bucket=bucket, Prefix="warehouse/recordings/")
    assert recordings.get("KeyCount", 0) > 0
    # Nothing fell back to the default local folders.
    assert not (deployment.home / "data").exists()
