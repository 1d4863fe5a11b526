"""Worker-scaling benchmark: the ~1,000-learner backfill of stages 2, 3 and 6 (`user_responses`,
`merged_responses`, `phase_features`) on the production profile (PostgreSQL instance, queued runs, the
Celery run launcher on Redis) with 1, 2 and 4 `engagement-worker` processes, against the default laptop
profile (SQLite, one process per run) in the same run.

    python benchmarks/bench_workers.py                       # ~1,000 learners; 1, 2, 4 workers
    python benchmarks/bench_workers.py --learners 100 --workers 1 2 --output /tmp/smoke

Needs PostgreSQL and Redis on 127.0.0.1 (as the production tests do). Setup (untimed), as in
bench_backfill.py: a generated landing area without audio, stage 1, the learners registered, and stages 2,
4, 5 materialized in-process, so every timed backfill redoes stages 2, 3 and 6 for every learner.

Timed, through GraphQL only: one `launchPartitionBackfill` of the three assets for every learner, launch
to COMPLETED_SUCCESS (polled every 2 s). On the production profile the backfill is cut into runs of
`--learners-per-run` learners (ENGAGEMENT_LEARNERS_PER_RUN) so there is work to spread; each worker has one
slot (--concurrency 1), the queue admits as many runs as there are slots, and the runs use the in-process
executor. The laptop profile keeps its default (1,000 learners per run, a process per run and step).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import yaml

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR)]

from bench_backfill import RestartedServer, pipeline_env, prepare, timed_backfill  # noqa: E402
from harness import machine_facts  # noqa: E402

from engagement_assets_tests.deploy.cluster import CeleryWorkers, production_instance  # noqa: E402
from engagement_assets_tests.deploy.services import (  # noqa: E402
    fresh_database,
    instance_environment,
    postgres_problem,
    redis_problem,
)
from engagement_assets_tests.e2e.server import DagsterServer  # noqa: E402


def production_config(root: Path, slots: int) -> Path:
    """The shipped profile with the queue and the per-backfill limit sized to the worker slots, and local
    compute logs (no S3 here)."""
    path = production_instance(
        root / f"dagster.production.{slots}.yaml",
        {
            "concurrency": {
                "runs": {
                    "max_concurrent_runs": slots,
                    "tag_concurrency_limits": [
                        {
                            "key": "dagster/backfill",
                            "value": {"applyLimitPerUniqueValue": True},
                            "limit": slots,
                        }
                    ],
                }
            },
        },
    )
    config = yaml.safe_load(path.read_text())
    config["compute_logs"] = {
        "module": "dagster._core.storage.local_compute_log_manager",
        "class": "LocalComputeLogManager",
        "config": {"base_dir": str(root / "compute_logs")},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_on_workers(
    home: Path, root: Path, env: dict, learners: list[str], workers: int, timeout: float
) -> dict:
    names = [f"w{index + 1}" for index in range(workers)]
    config = production_config(root, workers)
    with RestartedServer(home, env, instance_config=config) as server:
        worker_env = {**env, "DAGSTER_HOME": str(home)}
        with CeleryWorkers(root / f"workers-{workers}", worker_env, names, concurrency=1) as pool:
            print(f"{workers} worker(s) ready; backfill ...", flush=True)
            result = timed_backfill(server, learners, f"bench: {workers} worker(s)", timeout)
            received = pool.tasks_received()
    result["runs_per_worker"] = {name: len(tasks) for name, tasks in received.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # 1,300 requested gives ~1,000 English learners with scorable responses (the rest are filtered out).
    parser.add_argument("--learners", type=int, default=1300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--learners-per-run", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--output", type=Path, default=RESULTS / "workers")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, instance homes)")
    args = parser.parse_args()
    for service, problem in (("PostgreSQL", postgres_problem()), ("Redis", redis_problem())):
        if problem:
            sys.exit(f"{service} is not reachable on 127.0.0.1: {problem}")

    results: dict[str, dict] = {}
    scratch_folder = (
        contextlib.nullcontext(tempfile.mkdtemp(prefix="bench_workers_"))
        if args.keep
        else tempfile.TemporaryDirectory(prefix="bench_workers_")
    )
    with scratch_folder as scratch, fresh_database() as database:
        print(f"scratch folder: {scratch}", flush=True)
        root = Path(scratch)
        landing, warehouse = root / "landing", root / "warehouse"
        (landing / "telemetry").mkdir(parents=True)
        queue = f"engagement-bench-{uuid.uuid4().hex[:8]}"
        env = {
            **pipeline_env(landing, warehouse),
            **instance_environment(database, queue),
            "ENGAGEMENT_EXECUTOR": "in_process",
            "ENGAGEMENT_LEARNERS_PER_RUN": str(args.learners_per_run),
        }

        # The production instance's sensors tick once on the empty landing area, as the laptop's do below;
        # with a 3,600 s interval they do not look again when the server restarts for each worker count.
        home = root / "production_home"
        with DagsterServer(home, env, instance_config=production_config(root, 1)):
            pass

        # The laptop profile first: its own SQLite instance, the same data.
        local_home = root / "local_home"
        with DagsterServer(local_home, pipeline_env(landing, warehouse)) as server:
            print("laptop profile up; preparing data in-process ...", flush=True)
            with open(root / "prepare.log", "w") as log, contextlib.redirect_stderr(log):
                prepared = prepare(local_home, pipeline_env(landing, warehouse), args.learners, args.seed)
            learners = prepared["learners"]
            print(f"{len(learners)} learners ready {prepared['timings']}; laptop backfill ...", flush=True)
            results["laptop"] = timed_backfill(server, learners, "bench: laptop profile", args.timeout)
            print(f"laptop: {results['laptop']['wall_s']} s", flush=True)

        # The production instance knows nothing yet: register the drops and learners there too (no runs).
        register_everything(home, env, prepared)
        for workers in args.workers:
            results[f"workers_{workers}"] = run_on_workers(home, root, env, learners, workers, args.timeout)
            print(f"{workers} worker(s): {results[f'workers_{workers}']['wall_s']} s", flush=True)

    one = results[f"workers_{args.workers[0]}"]["wall_s"]
    result = {
        "benchmark": "backfill of stages 2, 3, 6 on the production profile with N Celery workers",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            **machine_facts(),
            "dagster": metadata.version("dagster"),
            "dagster_celery": metadata.version("dagster-celery"),
            "load_average": os.getloadavg(),
        },
        "settings": {
            "learners": len(learners),
            "learners_per_run_production": args.learners_per_run,
            "worker_concurrency": 1,
            "executor_production": "in_process",
            "seed": args.seed,
        },
        "setup": prepared["timings"],
        "results": results,
        "speedup_vs_first_worker_count": {
            key: round(one / value["wall_s"], 2)
            for key, value in results.items()
            if key.startswith("workers_")
        },
        "laptop_vs_first_worker_count": round(one / results["laptop"]["wall_s"], 2),
    }
    table = markdown(result)
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(table + "\n")


def register_everything(home: Path, env: dict, prepared: dict) -> None:
    import dagster as dg

    from engagement_assets.platform.partitions import register_partitions, telemetry_drops, users

    with temporarily(env), dg.DagsterInstance.from_config(str(home)) as instance:
        register_partitions(instance, telemetry_drops, prepared["drops"])
        register_partitions(instance, users, prepared["learners"])


@contextlib.contextmanager
def temporarily(env: dict):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def markdown(result: dict) -> str:
    m, r, s = result["machine"], result["results"], result["settings"]
    first = min(int(key.split("_")[1]) for key in r if key.startswith("workers_"))
    lines = [
        f"Machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, dagster "
        f"{m['dagster']}, dagster-celery {m['dagster_celery']}. {s['learners']:,} generated learners (no audio, "
        "local analyzer), stages 2, 4, 5 materialized beforehand; each row backfills `user_responses`, "
        "`merged_responses`, `phase_features` for every learner. Wall time = `launchPartitionBackfill` to "
        "COMPLETED_SUCCESS (polled every 2 s), daemon latency included.",
        "",
        "| profile | runs | wall s | s per learner | vs 1 worker | run s (mean) | runs per worker |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    laptop = r["laptop"]
    lines.append(
        f"| laptop default: SQLite, a process per run, 1,000 learners per run | {laptop['runs_launched']} "
        f"| {laptop['wall_s']:,.1f} | {laptop['per_partition_s']:.3f} "
        f"| {r[f'workers_{first}']['wall_s'] / laptop['wall_s']:.2f}x | {laptop['run_seconds_mean']:.1f} | - |"
    )
    for key, row in r.items():
        if not key.startswith("workers_"):
            continue
        workers = key.split("_")[1]
        lines.append(
            f"| production: PostgreSQL + Celery, **{workers} worker(s)**, {s['learners_per_run_production']} "
            f"learners per run | {row['runs_launched']} | {row['wall_s']:,.1f} | {row['per_partition_s']:.3f} "
            f"| {result['speedup_vs_first_worker_count'][key]:.2f}x | {row['run_seconds_mean']:.1f} "
            f"| {', '.join(str(count) for count in row['runs_per_worker'].values())} |"
        )
    lines += [
        "",
        f"- Every backfill complete: {all(row['materializations_ok'] for row in r.values())} "
        f"(materializations per asset = learners).",
        f"- Load average at the end: {', '.join(f'{x:.2f}' for x in m['load_average'])}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
