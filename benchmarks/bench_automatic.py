"""Automatic-path benchmark: telemetry drops landing on a running `dagster dev` with every sensor on, and
nothing else: how many runs the sensors and automation launch, and how long until every learner the drop
touched has fresh phase features.

    python benchmarks/bench_automatic.py                        # 120 learners vs baseline, 10,000 at scale
    python benchmarks/bench_automatic.py --scale-learners 0 --output /tmp/smoke

Each contender is a real deployment (the e2e tests' `DagsterServer`: webserver, daemon, code server, one
process per run; the repository's dagster.yaml; sensors every 5 s; the local analyzer) on a generated
landing area:

- day 1: the drops land (every learner new);
- day 2: the same export lands again under new names, so every learner is a known learner with a new drop.

Timed from the moment a day's files are renamed into the landing area until every registered learner has a
`phase_features` materialization newer than that and no run is queued or running (polled every second).

Contenders, in the same run: **ours** (this checkout) and the **baseline** (the code at BASELINE_REVISION,
checked out into a temporary git worktree and imported through PYTHONPATH): after a drop is cleaned it
refreshed every known learner in a run of its own and left the downstream stages to declarative automation.
The comparison size is a drop of about 10,000 events (120 generated learners, with recordings); at
`--scale-learners` only ours runs (without recordings: the scale is about orchestration), and the baseline's
day-2 wall time there is EXTRAPOLATED from its per-learner time at the comparison size (labelled as such).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR)]

from harness import machine_facts, machine_line, write_results  # noqa: E402

from engagement_assets_tests.e2e.server import DagsterServer  # noqa: E402

# The last revision whose learners sensor launched one run per known learner (issue 13's measurements).
BASELINE_REVISION = "7d02040"
IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def generate(folder: Path, learners: int, audio: bool) -> None:
    from engagement_assets.devtools.sample_data import generate_landing

    generate_landing(folder, learners=learners, seed=13, audio=audio, files=2)


def land(files: list[Path], telemetry: Path, prefix: str) -> float:
    """Rename the files into the landing area (written under hidden names first); returns the time."""
    for source in files:
        scratch = telemetry / f".{prefix}{source.name}.partial"
        shutil.copyfile(source, scratch)
    landed = time.time()
    for source in files:
        (telemetry / f".{prefix}{source.name}.partial").replace(telemetry / f"{prefix}{source.name}")
    return landed


class Observer:
    """Reads the deployment's instance directly (SQLite, as a second reader) rather than through GraphQL:
    a snapshot of tens of thousands of materializations through the webserver would itself be the load."""

    def __init__(self, home: Path):
        import dagster as dg

        self.dg = dg
        self.home = home
        with contextlib.chdir(home):  # the instance's relative paths resolve in its home
            self.instance = dg.DagsterInstance.from_config(str(home))

    def learners(self) -> list[str]:
        with contextlib.chdir(self.home):
            return self.instance.get_dynamic_partitions("users")

    def features_since(self, since: float) -> dict[str, float]:
        dg = self.dg
        found: dict[str, float] = {}
        cursor = None
        with contextlib.chdir(self.home):
            while True:
                page = self.instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey("phase_features"), after_timestamp=since),
                    limit=5000,
                    cursor=cursor,
                )
                for record in page.records:
                    found[record.partition_key] = max(found.get(record.partition_key, 0.0), record.timestamp)
                if not page.has_more:
                    return found
                cursor = page.cursor

    def runs_since(self, since: float) -> list:
        with contextlib.chdir(self.home):
            records = self.instance.get_run_records(
                filters=self.dg.RunsFilter(created_after=datetime.fromtimestamp(since, UTC))
            )
        return [record for record in records if record.create_timestamp.timestamp() >= since]


def wait_for_features(observer: Observer, landed: float, drops: int, timeout: float) -> dict:
    """Until every learner has features newer than `landed` and nothing is in flight, or the timeout."""
    deadline = time.time() + timeout
    while True:
        runs = observer.runs_since(landed)
        in_flight = [r for r in runs if r.dagster_run.status.value in IN_FLIGHT]
        learners = observer.learners()
        fresh = observer.features_since(landed)
        cleaned = [
            r for r in runs if r.dagster_run.tags.get("dagster/sensor_name") == "telemetry_drop_sensor"
        ]
        done = len(cleaned) >= drops and learners and set(learners) <= set(fresh) and not in_flight
        if done or time.time() > deadline:
            break
        time.sleep(1.0)
    runs = observer.runs_since(landed)
    by_launcher = Counter(
        r.dagster_run.tags.get("dagster/sensor_name") or r.dagster_run.tags.get("dagster/backfill", "other")
        for r in runs
    )
    statuses = Counter(r.dagster_run.status.value for r in runs)
    durations = [
        r.end_time - r.start_time for r in runs if r.start_time is not None and r.end_time is not None
    ]
    return {
        "completed": bool(done),
        "learners": len(learners),
        "learners_with_fresh_features": len(set(learners) & set(fresh)),
        "runs_launched": len(runs),
        "runs_by_launcher": dict(sorted(by_launcher.items())),
        "run_statuses": dict(sorted(statuses.items())),
        "run_seconds_total": round(sum(durations), 1),
        "first_learner_features_s": round(min(fresh.values()) - landed, 1) if fresh else None,
        "all_learners_features_s": round(max(fresh.values()) - landed, 1) if done and fresh else None,
        "waited_s": round(time.time() - landed, 1),
    }


class BaselineServer(DagsterServer):
    """The baseline revision had no sensor for the all-learner table (automation built it)."""

    expected_sensors = tuple(
        name
        for name in DagsterServer.expected_sensors
        if name not in ("engagement_table_sensor", "dead_runs_sensor")
    )


def scenario(label: str, code: Path, generated: Path, root: Path, audio: bool, timeout: float) -> dict:
    landing, warehouse, home = root / "landing", root / "warehouse", root / "dagster_home"
    (landing / "telemetry").mkdir(parents=True)
    shutil.copytree(generated / "sessions", landing / "sessions")
    if audio:
        shutil.copytree(generated / "audio", landing / "audio")
    drops = sorted(p for p in (generated / "telemetry").iterdir() if not p.name.startswith("."))
    env = {
        "ENGAGEMENT_STORAGE_URL": str(warehouse),
        "ENGAGEMENT_LANDING_URL": str(landing),
        "AUDIO_SOURCE_URL": str(landing / "audio" / "all-prod-storage"),
        "ENGAGEMENT_ANALYZER": "local",
        "ENGAGEMENT_SENSOR_INTERVAL_SECONDS": "5",
        "PYTHONPATH": str(code),
    }
    result = {"contender": label, "code": str(code), "drops": [p.name for p in drops]}
    server_class = DagsterServer if code == REPO_ROOT else BaselineServer
    with server_class(home, env) as server:
        observer = Observer(server.home)
        for day, prefix in (("day1_new_learners", "day1-"), ("day2_known_learners", "day2-")):
            landed = land(drops, landing / "telemetry", prefix)
            result[day] = wait_for_features(observer, landed, len(drops), timeout)
            print(f"{label} {day}: {json.dumps(result[day])}", flush=True)
            if not result[day]["completed"]:
                break
    return result


@contextlib.contextmanager
def baseline_checkout(revision: str):
    with tempfile.TemporaryDirectory(prefix="bench_baseline_") as scratch:
        target = Path(scratch) / "code"
        subprocess.run(
            ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(target), revision], check=True
        )
        try:
            yield target
        finally:
            subprocess.run(
                ["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(target)], check=False
            )


def summarise(compare: dict, scale: dict | None) -> dict:
    ours, baseline = compare["ours"], compare["baseline"]
    summary = {}
    for day in ("day1_new_learners", "day2_known_learners"):
        if day in ours and day in baseline:
            o, b = ours[day], baseline[day]
            summary[day] = {
                "runs_ours": o["runs_launched"],
                "runs_baseline": b["runs_launched"],
                "runs_ratio_baseline_over_ours": round(b["runs_launched"] / max(o["runs_launched"], 1), 1),
                "wall_s_ours": o["all_learners_features_s"],
                "wall_s_baseline": b["all_learners_features_s"],
                "baseline_completed": b["completed"],
            }
            if o["all_learners_features_s"] and b["all_learners_features_s"]:
                summary[day]["wall_ratio_baseline_over_ours"] = round(
                    b["all_learners_features_s"] / o["all_learners_features_s"], 1
                )
    day2 = baseline.get("day2_known_learners", {})
    scale_day2 = (scale or {}).get("ours", {}).get("day2_known_learners", {})
    if scale_day2 and day2.get("all_learners_features_s") and day2.get("learners"):
        per_learner = day2["all_learners_features_s"] / day2["learners"]
        summary["scale_day2_baseline_EXTRAPOLATED_s"] = round(per_learner * scale_day2["learners"], 0)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learners", type=int, default=120, help="comparison size (with recordings)")
    parser.add_argument("--scale-learners", type=int, default=10_000, help="ours only; 0 to skip")
    parser.add_argument("--timeout", type=float, default=3600, help="per day, ours")
    parser.add_argument(
        "--baseline-timeout", type=float, default=900, help="per day, baseline (it reports its progress then)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "automatic")
    args = parser.parse_args()

    results: dict = {
        "machine": machine_facts(),
        "baseline_revision": BASELINE_REVISION,
        "arguments": vars(args),
    }
    results["arguments"]["output"] = str(args.output)
    with tempfile.TemporaryDirectory(prefix="bench_automatic_") as scratch:
        root = Path(scratch)
        generate(root / "generated", args.learners, audio=True)
        compare = {"ours": scenario("ours", REPO_ROOT, root / "generated", root / "ours", True, args.timeout)}
        with baseline_checkout(BASELINE_REVISION) as code:
            compare["baseline"] = scenario(
                "baseline", code, root / "generated", root / "base", True, args.baseline_timeout
            )
        results["comparison"] = compare
        scale = None
        if args.scale_learners:
            generate(root / "generated_scale", args.scale_learners, audio=False)
            scale = {
                "ours": scenario(
                    "ours", REPO_ROOT, root / "generated_scale", root / "scale", False, args.timeout
                )
            }
            results["scale"] = scale
        results["summary"] = summarise(compare, scale)
    write_results(args.output, results, markdown(results))


def markdown(results: dict) -> str:
    lines = [
        f"Machine: {machine_line(results['machine'])}. Baseline: the code at {results['baseline_revision']}.",
        "",
        "| size | contender | day | learners | runs launched (by launcher) | first features s | all features s "
        "| run seconds |",
        "|---|---|---|---:|---|---:|---:|---:|",
    ]
    sections = [("comparison", results["comparison"]), ("scale", results.get("scale") or {})]
    for size, contenders in sections:
        for name, result in contenders.items():
            for day in ("day1_new_learners", "day2_known_learners"):
                if day not in result:
                    continue
                r = result[day]
                launchers = ", ".join(f"{k} {v}" for k, v in r["runs_by_launcher"].items())
                total = r["all_learners_features_s"] if r["completed"] else f"not done after {r['waited_s']}"
                lines.append(
                    f"| {size} | {name} | {day} | {r['learners']} | {r['runs_launched']} ({launchers}) "
                    f"| {r['first_learner_features_s']} | {total} | {r['run_seconds_total']} |"
                )
    lines += ["", "Summary: `" + json.dumps(results["summary"]) + "`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
