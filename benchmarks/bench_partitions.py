"""Partitions benchmark: what each sensor tick costs as the `users` partition set grows to a million keys.

    python benchmarks/bench_partitions.py                       # 100k, 300k, 1M keys, SQLite
    python benchmarks/bench_partitions.py --keys 10000 --output /tmp/smoke
    python benchmarks/bench_partitions.py --postgres postgresql://user:pw@127.0.0.1/db   # also PostgreSQL

Per size, on a fresh instance (the repository's dagster.yaml storage, or PostgreSQL), with the keys
registered untimed: the tick of each sensor of the code location, evaluated in this process against the
instance (median of 3 ticks):

- `learners_sensor` when a cleaned drop over 1,000 already known learners (scattered over the key order)
  has just been recorded: reading the drop's learners, listing the partitions, planning ranged runs;
- the same tick first in a fresh process, when the sensors' kept partition order is read whole (later
  ticks read only the keys added since);
- `learners_sensor` with nothing new (the common tick);
- `downstream_automation`: an evaluation of every automation condition of the code location from the
  previous tick's cursor, as the sensor runs it: the tick after 1,000 learners' phase features were recorded,
  and an idle tick (nothing new);
- `engagement_table_sensor` after those changes, and idle;
- `sessions_sensor` when 1,000 learners' lesson-tracking exports changed among one file per learner (its
  listing of `<landing>/sessions/` grows with the learners), and idle;
- `get_dynamic_partitions` alone (Dagster's cost of listing the keys, paid by the ticks that plan runs).

Baseline: the issue that asked for this measured one `downstream_automation` tick, with `eager()` on every
per-learner stage and every learner materialized, at 0.9 s (10,000 learners), 13 s (100,000), 68 s (300,000)
and 280 s (1,000,000) on SQLite. That setup cannot be rebuilt here in reasonable time (recording one
materialization costs ~12 ms on this machine: five assets for a million learners is 16 hours), and the code
under test evaluates no per-learner condition at all, so the comparison is the issue's figures.
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

from harness import machine_facts, machine_line, write_results  # noqa: E402

TOUCHED = 1_000
REGISTER_CHUNK = 20_000


def median_of(function, repeats: int = 3) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return round(statistics.median(timings), 3)


def measure(keys: int, root: Path, postgres: str | None) -> dict:
    """Every tick's cost at `keys` registered learners (runs in the code under test's import path)."""
    import dagster as dg
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engagement_assets.automation import partition_order
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

    automation = defs.resolve_sensor_def("downstream_automation")

    def evaluate(cursor):
        return dg.evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=automation.asset_selection, cursor=cursor
        )

    # Ticks as the sensor runs them, each from the previous one's cursor: the first evaluation (untimed)
    # has seen everything; then 1,000 learners' features change (what the conversation group's conditions
    # must not pay for: the all-learner table follows its own sensor).
    cursor = evaluate(None).cursor
    for learner in touched:
        instance.report_runless_asset_event(dg.AssetMaterialization("phase_features", partition=learner))
    started = time.perf_counter()
    after = evaluate(cursor)
    result["downstream_automation_after_changes_s"] = round(time.perf_counter() - started, 3)
    result["downstream_automation_idle_s"] = median_of(lambda: evaluate(after.cursor))
    result["get_dynamic_partitions_s"] = median_of(lambda: instance.get_dynamic_partitions("users"))
    table = defs.resolve_sensor_def("engagement_table_sensor")

    def table_tick(cursor=None):
        return table(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))

    result["engagement_table_sensor_after_changes_s"] = median_of(table_tick)
    latest = table_tick().cursor
    result["engagement_table_sensor_idle_s"] = median_of(lambda: table_tick(latest))
    result.update(_sessions_ticks(instance, defs, root / "landing", order, touched))

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

    # The first tick of a process reads the whole partition order; later ticks read only keys added since.
    partition_order._orders.clear()
    started = time.perf_counter()
    requests = tick()
    result["learners_sensor_first_tick_s"] = round(time.perf_counter() - started, 3)
    result["learners_sensor_after_a_drop_s"] = median_of(tick)
    result["learners_sensor_runs_planned"] = len(requests.run_requests)
    result["learners_sensor_idle_s"] = median_of(lambda: tick(requests.cursor))
    return result


def _sessions_ticks(instance, defs, landing: Path, order: list[str], touched: list[str]) -> dict:
    """One export per learner, untimed; the tick after 1,000 of them changed, and an idle tick."""
    import dagster as dg

    from engagement_assets.automation.batches import RefreshState
    from engagement_assets.automation.watch import newer_files
    from engagement_assets.platform.resources import StoreResource
    from engagement_assets.storage import layout
    from engagement_assets.storage.store import StoredFile

    folder = landing / layout.SESSIONS_PREFIX
    folder.mkdir(parents=True)
    long_ago = time.time() - 3600
    for learner in order:
        path = landing / layout.sessions_key(learner)
        path.touch()
        os.utime(path, (long_ago, long_ago))
    sensor = defs.resolve_sensor_def("sessions_sensor")
    resources = {"landing": StoreResource(url=str(landing))}

    def tick(cursor=None):
        return sensor(
            dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
        )

    # The steady state: every export seen long ago (the sensor's mark is past them); then 1,000 change.
    _, mark = newer_files([StoredFile("sessions/seen-before", 0, long_ago + 600)], None, limit=1)
    cursor = RefreshState(seen=mark).dump()
    later = time.time() + 10
    for learner in touched:
        os.utime(landing / layout.sessions_key(learner), (later, later))
    changed = median_of(lambda: tick(cursor))
    after = tick(cursor)
    drained = after
    for _ in range(len(touched) // 100):  # the other changed files, 200 a tick
        if not drained.run_requests:
            break
        drained = tick(drained.cursor)
    return {
        "sessions_sensor_after_changes_s": changed,
        "sessions_sensor_runs_planned": len(after.run_requests),
        "sessions_sensor_idle_s": median_of(lambda: tick(drained.cursor)),
    }


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


def in_subprocess(keys: int, root: Path, postgres: str | None) -> dict:
    """`measure` in a fresh interpreter, so no size inherits another's caches or memory."""
    env = {**os.environ, "DAGSTER_HOME": str(root)}
    arguments = [sys.executable, __file__, "--measure-one", str(keys), "--root", str(root)]
    arguments += ["--postgres", postgres] if postgres else []
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
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--output", type=Path, default=RESULTS / "partitions")
    parser.add_argument("--measure-one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_one:
        print(json.dumps(measure(args.measure_one, args.root, args.postgres)))
        return

    results: dict = {"machine": machine_facts(), "rows": []}
    storages = ["sqlite", *(["postgres"] if args.postgres else [])]
    with tempfile.TemporaryDirectory(prefix="bench_partitions_") as scratch:
        for storage in storages:
            for keys in args.keys:
                root = Path(scratch) / f"{storage}_{keys}"
                row = in_subprocess(keys, root, args.postgres if storage == "postgres" else None)
                row["storage"] = storage
                results["rows"].append(row)
                print(json.dumps(row), flush=True)
    write_results(args.output, results, markdown(results))


def markdown(results: dict) -> str:
    lines = [
        f"Machine: {machine_line(results['machine'])}. Median of 3 ticks; each row a fresh instance with that many `users` keys.",
        "",
        "| storage | users keys | downstream_automation after 1,000 learners changed / idle s "
        "| engagement_table_sensor after / idle s "
        "| learners_sensor after a 1,000-learner drop: first tick of a process / later ticks s (runs) / idle s "
        "| sessions_sensor after 1,000 exports changed s (runs) / idle s | get_dynamic_partitions s |",
        "|---|---:|---|---|---|---|---:|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['storage']} | {r['keys']:,} "
            f"| {r['downstream_automation_after_changes_s']} / {r['downstream_automation_idle_s']} "
            f"| {r['engagement_table_sensor_after_changes_s']} / {r['engagement_table_sensor_idle_s']} "
            f"| {r.get('learners_sensor_first_tick_s', '-')} / {r['learners_sensor_after_a_drop_s']} "
            f"({r['learners_sensor_runs_planned']}) / "
            f"{r['learners_sensor_idle_s']} "
            f"| {r['sessions_sensor_after_changes_s']} ({r['sessions_sensor_runs_planned']}) / "
            f"{r['sessions_sensor_idle_s']} | {r['get_dynamic_partitions_s']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
