"""Prediction benchmark: building the training set, training the engagement model and scoring every open
learner, at 100,000 labelled learner × phase rows.

    python benchmarks/bench_prediction.py
    python benchmarks/bench_prediction.py --rows 20000 --output /tmp/smoke

Data: generated phase histories with a planted cause of stopping (`devtools/sample_data/phase_history.py`),
as many learners as it takes to reach the labelled rows asked for. Each step runs in a fresh interpreter so
its peak RSS is its own; the data is generated once beforehand and read from Parquet there (untimed), so
"RSS added" (its peak minus the RSS just before it) is what the step itself needs. Times are wall clock, best of `--repeat`. Training includes the
baselines and the gradient-boosted comparison the model card reports (the model alone is a fraction).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR)]

from harness import machine_facts, machine_line, write_results  # noqa: E402

# Generated learners average about six labelled phases each.
ROWS_PER_LEARNER = 6.2
STEPS = ("training_set", "train", "score", "score_rows")


def child(step: str, data: Path, repeat: int) -> dict:
    from engagement_assets.prediction.model import loaded, stored_table, train
    from engagement_assets.prediction.risk import learner_risk, top_reasons
    from engagement_assets.prediction.training_set import LABEL, training_set

    phases = pd.read_parquet(data)
    history = training_set(phases)
    trained = train(history.rows, 200) if step.startswith("score") else None
    # Every learner's latest phase taken as open, so every learner is scored.
    open_rows = history.rows.assign(**{LABEL: pd.NA})
    before = _current_rss_mb()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        if step == "training_set":
            training_set(phases)
        elif step == "train":
            train(history.rows, 200)
        elif step == "score":
            model = loaded(stored_table(trained)).model
            scored = learner_risk(open_rows, history.latest_event, model, 0.5, 0.25)
        else:
            top_reasons(history.rows, trained.model.contributions(history.rows))
            trained.model.probability(history.rows)
        best = min(best, time.perf_counter() - started)
    result = {
        "step": step,
        "seconds": round(best, 3),
        "data_rss_mb": round(before, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "phase_rows": len(phases),
        "labelled_rows": int(history.rows[LABEL].notna().sum()),
    }
    if step == "score":
        result["learners_scored"] = len(scored)
    return result


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="labelled rows to reach (about)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS / "prediction")
    parser.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.data, args.repeat)))
        return
    from engagement_assets.devtools.sample_data.phase_history import phase_history

    results = {"machine": machine_facts(), "steps": []}
    with tempfile.TemporaryDirectory(prefix="bench-prediction-") as scratch:
        data = Path(scratch) / "phases.parquet"
        phase_history(int(args.rows / ROWS_PER_LEARNER), seed=1).to_parquet(data)
        for step in STEPS:
            command = [
                sys.executable,
                __file__,
                "--child",
                step,
                "--data",
                str(data),
                "--repeat",
                str(args.repeat),
            ]
            answer = subprocess.run(command, check=True, capture_output=True, text=True)
            results["steps"].append(json.loads(answer.stdout.strip().splitlines()[-1]))
    write_results(args.output, results, _markdown(results))


def _markdown(results: dict) -> str:
    first = results["steps"][0]
    lines = [
        machine_line(results["machine"]),
        "",
        f"**Prediction** ({first['labelled_rows']:,} labelled of {first['phase_rows']:,} learner × phase rows, "
        "generated with a planted cause; each step in a fresh process, best of the repeats)",
        "",
        "| step | seconds | peak RSS MB | RSS added by the step MB |",
        "|---|---:|---:|---:|",
    ]
    names = {
        "training_set": "training set (features and labels)",
        "train": "train (model, baselines, gradient-boosted comparison, calibration)",
        "score": "learner_risk for every learner (load and check the model, probability, band, reasons)",
        "score_rows": "probability and three reasons for every labelled row",
    }
    for step in results["steps"]:
        added = step["peak_rss_mb"] - step["data_rss_mb"]
        lines.append(
            f"| {names[step['step']]} | {step['seconds']} | {step['peak_rss_mb']:.0f} | {added:.0f} |"
        )
    scored = results["steps"][2].get("learners_scored")
    lines += ["", f"Learners scored: {scored:,}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
