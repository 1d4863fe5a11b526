"""Partitions benchmark: what each sensor tick costs as the `users` partition set grows to a million keys.

    python benchmarks/bench_partitions.py                       # 100k, 300k, 1M keys, SQLite
    python benchmarks/bench_partitions.py --keys 10000 --output /tmp/smoke
    python benchmarks/bench_partitions.py --postgres postgresql://user:pw@127.0.0.1/db   # also PostgreSQL

Per size, on a fresh instance (the repository's dagster.yaml storage, or PostgreSQL), with the keys
registered untimed: the tick of each sensor of the code location, evaluated in this process against the
instance (median of 3 ticks):

- `learners_sensor` when a cleaned drop over 1,000 already known learners (scattered over the key order)
  has just been recorded: reading the drop's learners, listing the partitions, planning ranged runs;
- `learners_sensor` with nothing new (the common tick);
- `downstream_automation`: one evaluation of every automation condition of the code location, after 1,000
  learners' phase features were recorded (the all-learner table must be requested);
- `get_dynamic_partitions` alone (Dagster's cost of listing the keys, paid by the ticks that plan runs).

The baseline is the same evaluation of the code at BASELINE_REVISION (eager conditions on every
per-learner stage), run in a subprocess from a temporary git worktree, at the sizes given by
`--baseline-keys` (its cost grows fastest).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR)]

BASELINE_REVISION = "7d02040"
TOUCHED = 1_000
REGISTER_CHUNK = 20_000


def median_of(function, repeats: int = 3) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return round(statistics.median(timings), 3)


def measure(keys: int, root: Path, postgres: str | None, automation_only: bool) -> dict:
    """Every tick's cost at `keys` registered learners (runs in the code under test's import path)."""
    import dagster as dg
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engagement_assets.definitions import defs
    from engagement_assets.ingestion.events import RESPONSE_SCHEMA
    from engagement_assets.platform.resources import StoreResource
    from engagement_assets.storage import layout

    instance = _instance(root, postgres)
    order = [f"{index:010d}" for index in range(keys)]
    started = time.perf_counter()
    for start in range(0, keys, REGISTER_CHUNK):
        instance.add_dynamic_partitions("users", order[start : start + REGISTER_CHUNK])
    result: dict = {"keys": keys, "register_s": round(time.perf_counter() - started, 1)}
    touched = order[:: max(1, keys // TOUCHED)][:TOUCHED]

    for learner in touched:  # their features changed: the all-learner table is due
        instance.report_runless_asset_event(dg.AssetMaterialization("phase_features", partition=learner))
    automation = defs.resolve_sensor_def("downstream_automation")
    result["downstream_automation_s"] = median_of(
        lambda: dg.evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=automation.asset_selection
        )
    )
    result["get_dynamic_partitions_s"] = median_of(lambda: instance.get_dynamic_partitions("users"))
    if automation_only:
        return result

    warehouse = root / "warehouse"
    part = warehouse / layout.partition_folder("cleaned_telemetry", "day2.json") / layout.part_name(0)
    part.parent.mkdir(parents=True, exist_ok=True)
    columns = {field.name: pa.nulls(len(touched), field.type) for field in RESPONSE_SCHEMA}
    columns["user_id"] = pa.array(sorted(touched))
    pq.write_table(pa.table(columns, schema=RESPONSE_SCHEMA), part)
    instance.report_runless_asset_event(dg.AssetMaterialization("cleaned_telemetry", partition="day2.json"))
    sensor = defs.resolve_sensor_def("learners_sensor")
    resources = {"warehouse": StoreResource(url=str(warehouse))}

    def tick(cursor=None):
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources=resources, definitions=defs
        )
        return sensor(context)

    requests = tick()
    result["learners_sensor_after_a_drop_s"] = median_of(tick)
    result["learners_sensor_runs_planned"] = len(requests.run_requests)
    result["learners_sensor_idle_s"] = median_of(lambda: tick(requests.cursor))
    return result


def _instance(root: Path, postgres: str | None):
    import dagster as dg

    root.mkdir(parents=True, exist_ok=True)
    if postgres:
        (root / "dagster.yaml").write_text(f"storage:\n  postgres:\n    postgres_url: {postgres}\n")
    else:
        (root / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    with contextlib.chdir(root):
        instance = dg.DagsterInstance.from_config(str(root))
    if postgres:  # one database for every size: start each from nothing
        instance.wipe()
        for key in instance.get_dynamic_partitions("users"):
            instance.delete_dynamic_partition("users", key)
    return instance


@contextlib.contextmanager
def baseline_checkout(revision: str):
    with tempfile.TemporaryDirectory(prefix="bench_baseline_") as scratch:
        target = Path(scratch) / "code"
        subprocess.run(
            ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(target), revision],
            check=True,
            capture_output=True,
        )
        try:
            yield target
        finally:
            subprocess.run(
                ["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(target)], check=False
            )


def in_subprocess(code: Path, keys: int, root: Path, postgres: str | None, automation_only: bool) -> dict:
    """`measure` in a fresh interpreter importing the package from `code`."""
    env = {**os.environ, "PYTHONPATH": str(code), "DAGSTER_HOME": str(root)}
    arguments = [sys.executable, __file__, "--measure-one", str(keys), "--root", str(root)]
    arguments += ["--postgres", postgres] if postgres else []
    arguments += ["--automation-only"] if automation_only else []
    finished = subprocess.run(
        arguments, env=env, cwd=root.parent, capture_output=True, text=True, check=False
    )
    if finished.returncode != 0:
        raise RuntimeError(finished.stderr[-3000:])
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--baseline-keys", type=int, nargs="*", default=[100_000, 300_000])
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--output", type=Path, default=RESULTS / "partitions")
    parser.add_argument("--measure-one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--automation-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_one:
        print(json.dumps(measure(args.measure_one, args.root, args.postgres, args.automation_only)))
        return

    from harness import machine_facts

    results: dict = {"machine": machine_facts(), "baseline_revision": BASELINE_REVISION, "rows": []}
    storages = ["sqlite", *(["postgres"] if args.postgres else [])]
    with tempfile.TemporaryDirectory(prefix="bench_partitions_") as scratch:
        scratch = Path(scratch)
        with baseline_checkout(BASELINE_REVISION) as baseline:
            for storage in storages:
                postgres = args.postgres if storage == "postgres" else None
                for contender, code, sizes in (
                    ("ours", REPO_ROOT, args.keys),
                    ("baseline", baseline, args.baseline_keys),
                ):
                    for keys in sizes:
                        root = scratch / f"{storage}_{contender}_{keys}"
                        row = in_subprocess(
                            code, keys, root, postgres, automation_only=contender == "baseline"
                        )
                        row.update(storage=storage, contender=contender)
                        results["rows"].append(row)
                        print(json.dumps(row), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


def markdown(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}. Baseline: the code at {results['baseline_revision']}; median of 3 ticks.",
        "",
        "| storage | contender | users keys | downstream_automation s | get_dynamic_partitions s "
        "| learners_sensor after a 1,000-learner drop s (runs planned) | learners_sensor idle s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        after = row.get("learners_sensor_after_a_drop_s", "–")
        planned = f" ({row['learners_sensor_runs_planned']})" if "learners_sensor_runs_planned" in row else ""
        lines.append(
            f"| {row['storage']} | {row['contender']} | {row['keys']:,} | {row['downstream_automation_s']} "
            f"| {row['get_dynamic_partitions_s']} | {after}{planned} | {row.get('learners_sensor_idle_s', '–')} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
