"""Per-learner checks benchmark: what recording each learner's check results on their own partition costs
a batched run, against one result per check for the run, in the same process and instance.

    python benchmarks/bench_checks.py                  # 1,000 learners, best of 2 runs each way
    python benchmarks/bench_checks.py --learners 100 --output /tmp/smoke

Setup (untimed): a generated landing area (no audio), stage 1 for every drop, the learners registered and
`user_responses`, `response_audio`, `audio_analysis` for all of them in one ranged run, on a SQLite instance
built from the repository's dagster.yaml in a temporary folder. Timed: one ranged run of `merged_responses`
and `phase_features` over every learner (the two CPU stages with per-learner checks: five checks a
learner), alternately recording every learner's results (what the stages do) and, as the baseline, one
result per check for the whole run (what they did before: the same code given only the first learner's
results; a check spec cannot be left out of these assets' runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]
RESULTS = REPO / "benchmarks" / "results"

from harness import machine_facts, machine_line, write_results  # noqa: E402


def prepare(root: Path, learners: int, seed: int):
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

    landing, warehouse = root / "landing", root / "warehouse"
    env = {
        "ENGAGEMENT_LANDING_URL": str(landing),
        "ENGAGEMENT_STORAGE_URL": str(warehouse),
        "ENGAGEMENT_AUDIO_SOURCE_URL": str(landing / "audio"),
        "ENGAGEMENT_ANALYZER": "local",
    }
    generate_landing(landing, learners=learners, seed=seed, audio=False)
    shutil.copy(REPO / "dagster.yaml", root / "dagster.yaml")
    os.chdir(root)
    instance = dg.DagsterInstance.from_config(str(root))
    resources = build_resources(Settings.from_env(env))
    drops = sorted(p.name for p in (landing / "telemetry").iterdir() if not p.name.startswith("."))
    assert all(result.success for result in materialize_drops(instance, resources, drops))
    register_partitions(instance, users, learner_keys(open_store(str(warehouse))))
    keys = instance.get_dynamic_partitions(users.name)
    result = materialize_partition_range(
        ASSETS, [user_responses, response_audio, audio_analysis], keys[0], keys[-1], instance, resources
    )
    assert result.success
    return instance, resources, keys


def timed_run(instance, resources, keys: list[str], per_learner: bool) -> dict:
    from engagement_assets.devtools.runs import QUIET, materialize_partition_range
    from engagement_assets.engagement_pipeline import ASSETS
    from engagement_assets.features import assets as features_assets
    from engagement_assets.matching import assets as matching_assets
    from engagement_assets.platform import checks

    def first_learner_only(context, results):
        return checks.learner_check_evaluations(context, dict(list(results.items())[:1]))

    evaluations = checks.learner_check_evaluations if per_learner else first_learner_only
    for module in (matching_assets, features_assets):
        module.learner_check_evaluations = evaluations
    started = time.perf_counter()
    result = materialize_partition_range(
        ASSETS,
        [matching_assets.merged_responses, features_assets.phase_features],
        keys[0],
        keys[-1],
        instance,
        resources,
        QUIET,
    )
    seconds = time.perf_counter() - started
    assert result.success
    return {"seconds": round(seconds, 2), "check_evaluations": len(result.get_asset_check_evaluations())}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS / "checks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_checks_") as scratch:
        instance, resources, keys = prepare(Path(scratch), args.learners, args.seed)
        runs = {"one result per check (before)": [], "every learner's results (now)": []}
        for _ in range(args.repeat):
            for name, per_learner in zip(runs, (False, True), strict=True):
                runs[name].append(timed_run(instance, resources, keys, per_learner))
                print(name, runs[name][-1], flush=True)
    best = {name: min(found, key=lambda run: run["seconds"]) for name, found in runs.items()}
    results = {"machine": machine_facts(), "learners": len(keys), "runs": runs, "best": best}
    before, now = (best[name]["seconds"] for name in runs)
    lines = [
        f"Per-learner checks, one ranged run of merged_responses and phase_features over {len(keys):,} "
        f"learners (best of {args.repeat}; {machine_line(results['machine'])})",
        "",
        "| run | seconds | check evaluations recorded |",
        "|---|---:|---:|",
        *(f"| {name} | {run['seconds']} | {run['check_evaluations']:,} |" for name, run in best.items()),
        "",
        f"Every learner's results: {now / before:.2f}x the run with one result per check.",
    ]
    write_results(args.output, results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
