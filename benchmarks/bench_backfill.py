"""Backfill benchmark: stages 2, 3 and 6 (`user_responses`, `merged_responses`, `phase_features`) for
~1,000 learners through a real `dagster dev` deployment, batched (our backfill policy: up to 1,000 learners
per run for CPU stages) versus one run per partition.

    python benchmarks/bench_backfill.py                 # 1,000 learners, 20 for one-run-per-partition
    python benchmarks/bench_backfill.py --learners 100 --single 5 --output /tmp/smoke

Setup (untimed): `dagster dev` on 127.0.0.1 against a throwaway instance built from the repository's
dagster.yaml (the e2e tests' `DagsterServer`), sensors at a 3,600 s interval so none ticks again after
start-up. Then, in this process and on the same instance: a generated landing area (no audio), stage 1 for
every drop, the learners registered, and `user_responses`, `response_audio`, `audio_analysis` for all of
them in one ranged run, so the backfills only redo stages 2, 3 and 6.

Timed, through GraphQL only: (a) one `launchPartitionBackfill` of the three assets for every learner; (b)
the server restarted with ENGAGEMENT_LEARNERS_PER_RUN=1 (one learner per run) and the same three assets
backfilled for a subset, its per-partition time extrapolated to all learners (labelled as such). Wall time
is launch to the backfill reported COMPLETED_SUCCESS (polled every 2 s, so ±2 s); it includes the daemon's
backfill-loop latency, which is part of what a user waits for.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR)]

from harness import machine_facts  # noqa: E402

from engagement_assets_tests.e2e.server import _LOCATION_QUERY, LOCATION, DagsterServer  # noqa: E402

STAGES = ["user_responses", "merged_responses", "phase_features"]

_BACKFILL_RUNS = """
query BackfillRuns($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}, limit: 5000) {
    __typename
    ... on Runs { results { runId status creationTime startTime endTime tags { key value }
                            assetSelection { path } } }
    ... on PythonError { message }
  }
}
"""


class RestartedServer(DagsterServer):
    """The same instance served again: sensor ticks are listed per code origin, and the new origin has
    none until the 3,600 s interval elapses, so ready = location loaded and every sensor RUNNING."""

    def _readiness(self) -> str:
        entries = self.graphql(_LOCATION_QUERY)["workspaceOrError"].get("locationEntries") or []
        entry = next((e for e in entries if e["name"] == LOCATION), None)
        if entry is None or entry["loadStatus"] != "LOADED":
            return f"location {entry and entry['loadStatus']}"
        not_running = [name for name, state in self.sensors().items() if state["status"] != "RUNNING"]
        return f"sensors not running: {not_running}" if not_running else "ready"


def pipeline_env(landing: Path, warehouse: Path, **extra: str) -> dict[str, str]:
    return {
        "ENGAGEMENT_STORAGE_URL": str(warehouse),
        "ENGAGEMENT_LANDING_URL": str(landing),
        "AUDIO_SOURCE_URL": str(landing / "audio" / "all-prod-storage"),
        "ENGAGEMENT_ANALYZER": "local",
        "ENGAGEMENT_SENSOR_INTERVAL_SECONDS": "3600",
        **extra,
    }


def prepare(home: Path, env: dict[str, str], learners: int, seed: int) -> dict:
    """Landing data, stage 1, learners registered, and the non-timed per-learner assets, in this process
    on the server's instance (same dagster.yaml; its relative paths resolve in `home`)."""
    import dagster as dg

    from engagement_assets.analysis.assets import audio_analysis
    from engagement_assets.audio.assets import response_audio
    from engagement_assets.devtools.runs import materialize_partition_range
    from engagement_assets.devtools.sample_data import generate_landing
    from engagement_assets.engagement_pipeline import ASSETS
    from engagement_assets.platform.partitions import register_partitions, users
    from engagement_assets.platform.resources import build_resources
    from engagement_assets.responses.assets import user_responses
    from engagement_assets.responses.extract import learner_keys
    from engagement_assets.settings import Settings
    from engagement_assets.storage.store import open_store
    from engagement_assets_tests.pipeline import materialize_drops

    landing = Path(env["ENGAGEMENT_LANDING_URL"])
    timings = {}
    started = time.perf_counter()
    generate_landing(landing, learners=learners, seed=seed, audio=False)
    timings["generate_landing_s"] = round(time.perf_counter() - started, 1)

    previous = Path.cwd()
    os.chdir(home)
    try:
        instance = dg.DagsterInstance.from_config(str(home))
        resources = build_resources(Settings.from_env(env))
        drops = sorted(p.name for p in (landing / "telemetry").iterdir() if not p.name.startswith("."))
        started = time.perf_counter()
        results = materialize_drops(instance, resources, drops)
        assert all(result.success for result in results)
        timings["stage1_s"] = round(time.perf_counter() - started, 1)

        found = learner_keys(open_store(env["ENGAGEMENT_STORAGE_URL"]))
        register_partitions(instance, users, found)
        keys = instance.get_dynamic_partitions(users.name)
        started = time.perf_counter()
        result = materialize_partition_range(
            ASSETS, [user_responses, response_audio, audio_analysis], keys[0], keys[-1], instance, resources
        )
        assert result.success
        timings["stages_2_4_5_in_process_s"] = round(time.perf_counter() - started, 1)
    finally:
        os.chdir(previous)
    return {"drops": drops, "learners": list(keys), "timings": timings}


def backfill_runs(server: DagsterServer, backfill_id: str) -> list[dict]:
    data = server.graphql(_BACKFILL_RUNS, {"tags": [{"key": "dagster/backfill", "value": backfill_id}]})
    runs = data["runsOrError"]
    if runs["__typename"] != "Runs":
        raise server.fail(f"runsOrError: {runs}")
    return runs["results"]


def timed_backfill(server: DagsterServer, partitions: list[str], title: str, timeout: float) -> dict:
    before = server.snapshot()
    assert not before.active_runs() and not before.active_backfills(), before.describe()
    known_runs = {run["runId"] for run in before.runs}
    started_at = time.time()
    started = time.perf_counter()
    backfill_id = server.launch_backfill(STAGES, partitions, title=title)
    backfill = server.wait_for_backfill(backfill_id, timeout=timeout)
    wall = time.perf_counter() - started

    runs = backfill_runs(server, backfill_id)
    after = server.snapshot()
    run_ids = {run["runId"] for run in runs}
    written = {asset: 0 for asset in STAGES}
    for event in after.materializations:
        if event.run_id in run_ids and event.asset in written:
            written[event.asset] += 1
    others = [run for run in after.runs if run["runId"] not in known_runs and run["runId"] not in run_ids]
    durations = [run["endTime"] - run["startTime"] for run in runs if run["startTime"] and run["endTime"]]
    first_start = min(run["startTime"] for run in runs)
    last_end = max(run["endTime"] for run in runs)
    return {
        "backfill_id": backfill_id,
        "status": backfill["status"],
        "partitions": len(partitions),
        "runs_launched": len(runs),
        "run_statuses": sorted({run["status"] for run in runs}),
        "wall_s": round(wall, 2),
        "per_partition_s": round(wall / len(partitions), 4),
        "launch_to_first_run_start_s": round(first_start - started_at, 2),
        "first_run_start_to_last_run_end_s": round(last_end - first_start, 2),
        "run_seconds_total": round(sum(durations), 2),
        "run_seconds_mean": round(statistics.mean(durations), 2),
        "run_seconds_median": round(statistics.median(durations), 2),
        "materializations": written,
        "materializations_ok": all(count == len(partitions) for count in written.values()),
        "other_runs_during_backfill": len(others),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument(
        "--single", type=int, default=20, help="learners in the one-run-per-partition backfill"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--output", type=Path, default=RESULTS / "backfill")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_backfill_") as scratch:
        root = Path(scratch)
        landing, warehouse, home = root / "landing", root / "warehouse", root / "dagster_home"
        (landing / "telemetry").mkdir(parents=True)
        env = pipeline_env(landing, warehouse)

        with DagsterServer(home, env) as server:
            assert server.snapshot().runs == [], "a run started before anything landed"
            print("server up; preparing data in-process ...", flush=True)
            # The in-process runs log every event to stderr: keep that out of the console.
            with open(root / "prepare.log", "w") as log, contextlib.redirect_stderr(log):
                prepared = prepare(home, env, args.learners, args.seed)
            learners = prepared["learners"]
            assert sorted(server.partition_keys("user_responses")) == sorted(learners)
            print(f"{len(learners)} learners ready {prepared['timings']}; backfill (a) ...", flush=True)
            batched = timed_backfill(server, learners, "bench: batched backfill", args.timeout)
            print(f"(a) {batched}", flush=True)

        subset = learners[: args.single]
        with RestartedServer(home, {**env, "ENGAGEMENT_LEARNERS_PER_RUN": "1"}) as server:
            print(f"server restarted with 1 learner per run; backfill (b) of {len(subset)} ...", flush=True)
            single = timed_backfill(server, subset, "bench: one run per partition", args.timeout)
            print(f"(b) {single}", flush=True)

    n = len(learners)
    extrapolated = single["per_partition_s"] * n
    result = {
        "benchmark": "backfill of stages 2, 3, 6 (user_responses, merged_responses, phase_features)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            **machine_facts(),
            "dagster": metadata.version("dagster"),
            "load_average": os.getloadavg(),
        },
        "settings": {
            "learners_requested": args.learners,
            "seed": args.seed,
            "audio": False,
            "analyzer": "local",
            "sensor_interval_s": 3600,
            "wall_time": "launchPartitionBackfill to COMPLETED_SUCCESS, polled every 2 s",
        },
        "setup": {"drops": len(prepared["drops"]), "learners": n, **prepared["timings"]},
        "batched": batched,
        "one_run_per_partition": single,
        "one_run_per_partition_extrapolated": {
            "learners": n,
            "wall_s": round(extrapolated, 1),
            "runs": n,
            "note": f"EXTRAPOLATED linearly from {single['partitions']} learners (not run)",
        },
        "speedup": round(extrapolated / batched["wall_s"], 1),
        "per_partition_ratio": round(single["per_partition_s"] / batched["per_partition_s"], 1),
    }
    table = markdown(result)
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(table + "\n")


def markdown(result: dict) -> str:
    m, b, s, x = (
        result["machine"],
        result["batched"],
        result["one_run_per_partition"],
        result["one_run_per_partition_extrapolated"],
    )
    n = result["setup"]["learners"]
    lines = [
        f"Machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, "
        f"dagster {m['dagster']}. `dagster dev` on 127.0.0.1, SQLite instance from the repository's "
        f"dagster.yaml, default run launcher (one process per run). {n:,} generated learners "
        f"({result['setup']['drops']} drops, no audio, local analyzer); `response_audio` and "
        "`audio_analysis` materialized beforehand, so each backfill does stages 2, 3 and 6 only. Wall "
        "time = `launchPartitionBackfill` to COMPLETED_SUCCESS (polled every 2 s), daemon latency included.",
        "",
        "| backfill of user_responses + merged_responses + phase_features | learners | runs launched "
        "| wall s | s per learner | run s (mean) | launch → first run start s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| ours: up to 1,000 learners per run | {b['partitions']:,} | {b['runs_launched']:,} "
        f"| {b['wall_s']:,.1f} | {b['per_partition_s']:.3f} | {b['run_seconds_mean']:.1f} "
        f"| {b['launch_to_first_run_start_s']:.1f} |",
        f"| one run per learner (ENGAGEMENT_LEARNERS_PER_RUN=1), measured | {s['partitions']:,} "
        f"| {s['runs_launched']:,} | {s['wall_s']:,.1f} | {s['per_partition_s']:.3f} "
        f"| {s['run_seconds_mean']:.1f} | {s['launch_to_first_run_start_s']:.1f} |",
        f"| one run per learner, **EXTRAPOLATED** to {n:,} (not run) | {n:,} | {x['runs']:,} "
        f"| {x['wall_s']:,.1f} | {s['per_partition_s']:.3f} | - | - |",
        "",
        f"- Ours vs one run per learner for {n:,} learners: **{result['speedup']}x** less wall time "
        f"(per-learner overhead {b['per_partition_s']:.3f} s vs {s['per_partition_s']:.3f} s).",
        f"- Materializations written by the backfills: ours {b['materializations']}, one-per-run "
        f"{s['materializations']}; all {'complete' if b['materializations_ok'] and s['materializations_ok'] else 'INCOMPLETE'}."
        f" Runs not from a backfill during the measurements: {b['other_runs_during_backfill']} / "
        f"{s['other_runs_during_backfill']}.",
        f"- Setup (not timed): landing generated in {result['setup']['generate_landing_s']} s, stage 1 in "
        f"{result['setup']['stage1_s']} s, stages 2, 4, 5 in process in "
        f"{result['setup']['stages_2_4_5_in_process_s']} s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
