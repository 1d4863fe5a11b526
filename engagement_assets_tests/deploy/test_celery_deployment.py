"""PRODUCTION PATH, for real: the shipped production instance profile (PostgreSQL storage, queued runs with
tag limits, pools, the Celery run launcher on Redis, run monitoring) with two `engagement-worker`
processes, `dagster dev` for the webserver, daemon and sensors, driven only through GraphQL.

1. Dropped golden telemetry flows through every asset to the golden values, with runs on both workers.
2. A backfill of one run per learner runs several runs at once against one PostgreSQL instance, with no
   "database is locked" anywhere.
3. A worker process killed in the middle of the Gemini analysis (fake Gemini server, real SDK): the daemon
   notices and fails the run, a run retry re-executes it from the failure on a worker, and every response
   ends up with exactly one analysis; nothing that finished before the kill runs twice.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import pandas as pd
import pytest

from engagement_assets.storage.store import open_store
from engagement_assets_tests.deploy.conftest import WORKERS, ProductionDeployment, production_deployment
from engagement_assets_tests.e2e.server import server_environment, start_side_by_side
from engagement_assets_tests.e2e.test_end_to_end import (
    SETTLE_TIMEOUT,
    assert_golden_outputs,
    assert_launched_automatically_and_fresh,
    drop_file,
    pipeline_environment,
    run_tags,
    wait_for_pipeline,
)
from engagement_assets_tests.fake_gemini import FakeGemini
from engagement_assets_tests.ingestion.test_golden_ingestion import DROPS, expected_learners
from engagement_assets_tests.pipeline import stored_frame

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("production_services")]

TASK_ID_TAG = "dagster-celery/task_id"

_RUN_TIMES = """
query RunTimes($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}, limit: 500) {
    ... on Runs { results { runId status startTime endTime tags { key value } } }
  }
}
"""

_RUN_MESSAGES = """
query RunMessages($runId: ID!) {
  logsForRun(runId: $runId, limit: 5000) {
    ... on EventConnection { events { __typename ... on MessageEvent { message } } }
  }
}
"""


def land_golden_telemetry(golden, landing) -> None:
    for drop in DROPS:
        drop_file(golden / "landing" / "telemetry" / drop, landing / "telemetry")


def local_landing(root, golden):
    landing, warehouse = root / "landing", root / "warehouse"
    (landing / "telemetry").mkdir(parents=True)
    shutil.copytree(golden / "landing" / "sessions", landing / "sessions")
    shutil.copytree(golden / "landing" / "audio", landing / "audio")
    return landing, warehouse


@pytest.fixture(scope="module")
def pipeline_cluster(tmp_path_factory, golden, s3_endpoint, production_services):
    """Local folders, the imported golden analysis, two workers with two slots each, one learner per
    backfill run (so a backfill is many runs at once)."""
    root = tmp_path_factory.mktemp("celery_pipeline")
    landing, warehouse = local_landing(root, golden)
    env = {
        **pipeline_environment(
            str(warehouse), str(landing), str(landing / "audio" / "all-prod-storage"), golden
        ),
        "ENGAGEMENT_LEARNERS_PER_RUN": "1",
    }
    with production_deployment(root, env, s3_endpoint, concurrency=2) as deployment:
        land_golden_telemetry(golden, landing)
        deployment.store = open_store(warehouse)
        yield deployment


@pytest.fixture(scope="module")
def fake_gemini():
    # Slow enough answers that the analysis of the golden clips lasts a while: there is a run to kill.
    with FakeGemini(rpm=100_000, latency_seconds=0.4) as fake:
        yield fake


@pytest.fixture(scope="module")
def gemini_cluster(tmp_path_factory, golden, s3_endpoint, fake_gemini, production_services):
    root = tmp_path_factory.mktemp("celery_gemini")
    landing, warehouse = local_landing(root, golden)
    env = {
        **pipeline_environment(
            str(warehouse), str(landing), str(landing / "audio" / "all-prod-storage"), golden
        ),
        "ENGAGEMENT_ANALYZER": "gemini",
        "GEMINI_API_KEY": "test-key",
        "GEMINI_BASE_URL": fake_gemini.url,
        "GEMINI_CONCURRENCY": "2",
        "GEMINI_RPM": "100000",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    with production_deployment(root, env, s3_endpoint) as deployment:
        # The test lands the telemetry itself, so the analysis cannot finish before it watches.
        deployment.landing = landing
        deployment.store = open_store(warehouse)
        yield deployment


@pytest.fixture(scope="module", autouse=True)
def clusters_side_by_side(request):
    start_side_by_side(request, ("pipeline_cluster", "gemini_cluster"))


def runs_with_tag(deployment: ProductionDeployment, key: str, value: str) -> list[dict]:
    data = deployment.server.graphql(_RUN_TIMES, {"tags": [{"key": key, "value": value}]})
    return data["runsOrError"]["results"]


def run_messages(deployment: ProductionDeployment, run_id: str) -> list[str]:
    data = deployment.server.graphql(_RUN_MESSAGES, {"runId": run_id})["logsForRun"]
    return [event.get("message") or "" for event in data["events"]]


def most_at_once(runs: list[dict]) -> int:
    edges = sorted(
        [(run["startTime"], 1) for run in runs] + [(run["endTime"], -1) for run in runs],
        key=lambda edge: (edge[0], edge[1]),
    )
    busy = peak = 0
    for _, change in edges:
        busy += change
        peak = max(peak, busy)
    return peak


def every_log(deployment: ProductionDeployment) -> str:
    paths = [deployment.server.log_path, *(deployment.workers.log(name) for name in WORKERS)]
    return "\n".join(path.read_text(errors="replace") for path in paths)


def test_the_pipeline_runs_on_two_celery_workers_to_the_golden_values(pipeline_cluster, golden):
    deployment = pipeline_cluster
    learners = expected_learners(golden)
    settled = wait_for_pipeline(deployment.server, learners)

    assert_launched_automatically_and_fresh(settled, learners)
    assert_golden_outputs(deployment.store, golden, learners)
    # Every run went through Celery, and both workers took runs.
    tasks = {run_tags(run).get(TASK_ID_TAG) for run in settled.runs}
    assert None not in tasks, "a run was launched without the Celery run launcher"
    received = deployment.workers.tasks_received()
    assert tasks <= set().union(*received.values()), (tasks, received)
    assert all(received[name] & tasks for name in WORKERS), f"runs per worker: {received}"


def test_a_backfill_runs_several_runs_at_once_on_one_postgres_instance(pipeline_cluster, golden):
    deployment = pipeline_cluster
    learners = expected_learners(golden)
    wait_for_pipeline(deployment.server, learners)
    server = deployment.server

    backfill_id = server.launch_backfill(["merged_responses", "phase_features"], learners, "concurrent runs")
    backfill = server.wait_for_backfill(backfill_id, timeout=300)

    runs = runs_with_tag(deployment, "dagster/backfill", backfill_id)
    assert backfill["status"] == "COMPLETED_SUCCESS"
    assert len(runs) == len(learners), "one run per learner (both assets in it)"
    assert {run["status"] for run in runs} == {"SUCCESS"}
    assert most_at_once(runs) >= 2, "the runs should overlap"
    # The shipped profile lets one backfill hold at most 3 of the 4 run slots.
    assert most_at_once(runs) <= 3
    assert "database is locked" not in every_log(deployment)
    assert_golden_outputs(deployment.store, golden, learners, ("merged_responses", "phase_features"))


def test_with_the_celery_executor_each_step_runs_on_the_workers(pipeline_cluster, golden, tmp_path):
    """The other Celery mode: a run executing where it was started (here the CLI), its steps sent to the
    workers as tasks (ENGAGEMENT_EXECUTOR=celery), on the same instance."""
    deployment = pipeline_cluster
    learners = expected_learners(golden)
    wait_for_pipeline(deployment.server, learners)
    known = {run["runId"] for run in deployment.server.snapshot().runs}
    before = {name: set(tasks) for name, tasks in deployment.workers.tasks_received().items()}

    env = server_environment(
        {**deployment.env, "DAGSTER_HOME": str(deployment.server.home), "ENGAGEMENT_EXECUTOR": "celery"}
    )
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "engagement_assets.definitions"]
    command += ["--select", "merged_responses,phase_features", "--partition", learners[0]]
    finished = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]

    # The CLI's run; automation may start others after it (the all-learner table follows phase_features).
    (run,) = [
        run
        for run in deployment.server.snapshot().runs
        if run["runId"] not in known and not {"dagster/sensor_name", "dagster/backfill"} & set(run_tags(run))
    ]
    assert run["status"] == "SUCCESS"
    messages = run_messages(deployment, run["runId"])
    for step in ("merged_responses", "phase_features"):
        # Reported by the worker that ran the step ("[CeleryExecutor] Executing steps … in celery worker").
        executed = f"Executing steps {step} in celery worker"
        assert any(message.endswith(executed) for message in messages), "\n".join(messages)
    after = deployment.workers.tasks_received()
    assert sum(len(after[name] - before[name]) for name in WORKERS) == 2, "one Celery task per step"
    assert_golden_outputs(deployment.store, golden, learners, ("merged_responses", "phase_features"))


def learners_of_run(server, run: dict, asset: str) -> list[str]:
    """The partitions a run covers: its partition, or its range in the partition set's order."""
    tags = run_tags(run)
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    order = server.partition_keys(asset)
    first, last = tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]
    return order[order.index(first) : order.index(last) + 1]


def test_a_worker_killed_mid_run_is_retried_with_nothing_lost_or_duplicated(
    gemini_cluster, fake_gemini, golden
):
    deployment = gemini_cluster
    server, workers = deployment.server, deployment.workers
    land_golden_telemetry(golden, deployment.landing)

    # Wait until an analysis run has paid for a few answers, then kill the process executing it.
    victim: dict = {}

    def analysis_under_way() -> tuple[bool, str]:
        snapshot = server.snapshot()
        server.raise_on_failures(snapshot)
        for run in snapshot.active_runs():
            assets = {key["path"][-1] for key in run.get("assetSelection") or []}
            if run["status"] == "STARTED" and "audio_analysis" in assets and len(fake_gemini.requests) >= 5:
                victim.update(run)
                return True, run["runId"]
        return False, f"{len(fake_gemini.requests)} Gemini requests\n{snapshot.describe()}"

    server.poll("an audio_analysis run under way", analysis_under_way, timeout=300, every=0.5)
    run_id = victim["runId"]
    task_id = run_tags(victim)[TASK_ID_TAG]
    worker, pid = workers.pool_process_of(task_id)
    requests_before_kill = len(fake_gemini.requests)
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    def retried() -> tuple[bool, str]:
        snapshot = server.snapshot()
        server.raise_on_failures(snapshot, tolerated={run_id})
        retries = [run for run in snapshot.runs if run_tags(run).get("dagster/parent_run_id") == run_id]
        return any(run["status"] == "SUCCESS" for run in retries), snapshot.describe()

    # Only the killed run and its retry matter here; the rest of the pipeline is the first test's.
    server.poll("the killed run's retry to succeed", retried, timeout=SETTLE_TIMEOUT)
    settled = server.snapshot()
    print(
        f"killed {worker} pid {pid} after {requests_before_kill} requests; settled {time.monotonic() - killed_at:.0f}s later"
    )

    # The daemon saw the dead worker and failed the run; a retry re-executed it from the failure.
    assert f"pid:{pid} exited with 'signal 9 (SIGKILL)'" in workers.log(worker).read_text()
    killed = next(run for run in settled.runs if run["runId"] == run_id)
    assert killed["status"] == "FAILURE"
    assert any(
        "Marking run" in message and "as failed" in message for message in run_messages(deployment, run_id)
    )
    retries = [run for run in settled.runs if run_tags(run).get("dagster/parent_run_id") == run_id]
    assert [run["status"] for run in retries] == ["SUCCESS"], settled.describe()
    retry_id = retries[0]["runId"]
    assert run_tags(retries[0]).get(TASK_ID_TAG), "the retry ran on a Celery worker too"

    # Each (asset, learner) of the killed run was materialized exactly once across it and its retry: what
    # finished before the kill is kept, the interrupted step and what follows ran again. (Which learners and
    # stages the run covered depends on how the drops' learners were batched: read them from the run.)
    learners = learners_of_run(server, victim, "audio_analysis")
    assert learners
    written = Counter(
        (event.asset, event.partition)
        for event in settled.materializations
        if event.run_id in (run_id, retry_id)
    )
    assets = {key["path"][-1] for key in victim["assetSelection"]}
    assert {"response_audio", "audio_analysis"} <= assets
    assert written == {(asset, learner): 1 for asset in assets for learner in learners}
    assert any(
        event.asset == "audio_analysis" and event.run_id == retry_id for event in settled.materializations
    )

    # Nothing lost or duplicated: each learner's analysis has exactly one row per response, all answered.
    for learner in learners:
        responses = stored_frame(deployment.store, f"user_responses/{learner}.parquet")
        analysis = stored_frame(deployment.store, f"audio_analysis/{learner}.parquet")
        keys = ["event_mid", "event_ets"]
        assert not analysis.duplicated(keys).any()
        assert len(analysis) == len(responses)
        merged = responses[keys].merge(analysis[keys], on=keys, how="outer", indicator=True)
        assert (merged["_merge"] == "both").all()
        assert "failed" not in set(analysis["status"].astype(str)), analysis["status"].value_counts()
    # And no clip was paid for more than twice (once before the kill, once after).
    paid = pd.Series([request.audio_sha256 for request in fake_gemini.requests]).value_counts()
    assert paid.max() <= 2, paid.head()
