"""Stage-2 benchmark: the cost of refreshing a batch of learners as the history of drops grows.

    python benchmarks/bench_history.py
    python benchmarks/bench_history.py --learners 500 --output /tmp/smoke

Setup (untimed): one generated drop is cleaned by stage 1; the history is that drop's cleaned parts stored
again under 1, 5 and 20 drop names, in two scenarios: "new learners" (each day other learners: the batch's
rows are in one drop however long the history) and "same learners" (every learner practises every day:
fresh response ids, so every drop holds every learner and the batch's own rows grow with the history).
The batch's responses are extracted and stored after all days but the last, as the platform does when a
drop lands; then the last day's drop is stored.

Timed (best of 3, LocalStore), for one learner and for a batch of 50 learners scattered over the key range
(what a drop's learners look like in key order): the refresh (`extract_learner_responses` with the
learners' stored responses: reads only the newest drop and carries the stored rows over) against, in the
same run, the full rebuild it replaces (the same call with no stored responses, which reads every drop as
stage 2 did before), and a full scan of every part for scale. The requirement: a refresh's cost must not
grow with the number of drops.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR)]

from harness import machine_facts, machine_line, write_results  # noqa: E402

from engagement_assets.devtools.sample_data import generate_landing  # noqa: E402
from engagement_assets.ingestion.cleaning import ROW_GROUP_SIZE, clean_drop  # noqa: E402
from engagement_assets.ingestion.events import RESPONSE_SCHEMA  # noqa: E402
from engagement_assets.responses.extract import (  # noqa: E402
    USER_RESPONSES,
    cleaned_part_keys,
    extract_learner_responses,
    learner_keys,
)
from engagement_assets.storage import layout  # noqa: E402
from engagement_assets.storage.parquet import read_parquet  # noqa: E402
from engagement_assets.storage.store import LocalStore  # noqa: E402

HISTORIES = (1, 5, 20)
SCENARIOS = ("new learners", "same learners")
BATCH = 50


def full_scan(store: LocalStore) -> int:
    """Every row of every drop: what a batch would cost with no pruning at all."""
    return read_parquet(store, cleaned_part_keys(store), schema=RESPONSE_SCHEMA).num_rows


def clean_one_drop(root: Path, learners: int) -> list[pa.Table]:
    generate_landing(root / "landing", learners=learners, seed=5, audio=False, files=1)
    (drop,) = (root / "landing" / "telemetry").iterdir()
    with open(drop, "rb") as stream:
        cleaned = clean_drop(stream, drop.name, root / "work")
    return [pq.read_table(path) for path in cleaned.parts.files]


def store_days(store: LocalStore, root: Path, cleaned: list[pa.Table], days: range, scenario: str) -> None:
    """Days of history. "same learners": every day the same learners practise (fresh response ids);
    "new learners": every day other learners (ids suffixed by the day), so day 0's learners are in one drop."""
    for day in days:
        column = "event_mid" if scenario == "same learners" or day == 0 else "user_id"
        for index, table in enumerate(cleaned):
            suffixed = pc.binary_join_element_wise(table.column(column), pa.scalar(f"d{day:02d}"), "")
            if day == 0 and column == "user_id":
                suffixed = table.column(column)
            fresh = table.set_column(table.schema.get_field_index(column), column, suffixed)
            local = root / "part.parquet"
            pq.write_table(fresh.sort_by("user_id"), local, row_group_size=ROW_GROUP_SIZE, compression="zstd")
            folder = layout.partition_folder("cleaned_telemetry", f"day{day}.json")
            store.put_file(local, f"{folder}/{layout.part_name(index)}")


def store_responses(store: LocalStore, root: Path, learners: list[str]) -> None:
    """What the I/O manager does with stage 2's output: one file per learner, its notes kept."""
    for learner, table in extract_learner_responses(store, learners).responses.items():
        pq.write_table(table, root / "responses.parquet")
        store.put_file(root / "responses.parquet", layout.partition_file(USER_RESPONSES, learner))


def without_stored_responses(store: LocalStore, function):
    """`function()` with the stored responses out of sight: the full rebuild stage 2 did before."""
    folder, hidden = store.path(USER_RESPONSES), store.path(".hidden-" + USER_RESPONSES)
    folder.rename(hidden)
    try:
        return function()
    finally:
        hidden.rename(folder)


def best_of(function, repeats: int = 3) -> tuple[float, object]:
    timings, value = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        value = function()
        timings.append(time.perf_counter() - started)
    return min(timings), value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learners", type=int, default=5000)
    parser.add_argument("--histories", type=int, nargs="+", default=list(HISTORIES))
    parser.add_argument("--output", type=Path, default=RESULTS / "history")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_history_") as scratch:
        root = Path(scratch)
        cleaned = clean_one_drop(root, args.learners)
        day0_store = LocalStore(root / "day0")
        store_days(day0_store, root, cleaned, range(1), "same learners")
        day0 = learner_keys(day0_store)
        batch = sorted(random.Random(1).sample(day0, BATCH))
        one = [day0[len(day0) // 2]]
        for scenario in SCENARIOS:
            for drops in args.histories:
                store = LocalStore(root / f"history_{scenario}_{drops}")
                store_days(store, root, cleaned, range(drops - 1), scenario)
                store_responses(store, root, sorted({*one, *batch}))
                store_days(store, root, cleaned, range(drops - 1, drops), scenario)
                history_rows = sum(t.num_rows for t in cleaned) * drops
                scan_s, _ = best_of(partial(full_scan, store))
                for label, learners in (("1 learner", one), (f"{BATCH} learners", batch)):
                    ours_s, extraction = best_of(partial(extract_learner_responses, store, learners))
                    full_s, rebuilt = without_stored_responses(
                        store, partial(best_of, partial(extract_learner_responses, store, learners))
                    )
                    rows.append(
                        {
                            "scenario": scenario,
                            "drops": drops,
                            "batch": label,
                            "rows_in_history": history_rows,
                            "refresh_rows_read": extraction.rows_read,
                            "refresh_rows_carried": extraction.rows_carried,
                            "refresh_parts_read": extraction.parts_read,
                            "refresh_s": round(ours_s, 4),
                            "full_rebuild_rows_read": rebuilt.rows_read,
                            "full_rebuild_s": round(full_s, 4),
                            "refresh_over_full_rebuild": round(ours_s / full_s, 2),
                            "full_scan_s": round(scan_s, 4),
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
    results = {
        "machine": machine_facts(),
        "learners": args.learners,
        "histories": args.histories,
        "rows": rows,
    }
    write_results(args.output, results, markdown(results))


def markdown(results: dict) -> str:
    lines = [
        f"Machine: {machine_line(results['machine'])}. One generated drop of {results['learners']:,} learners, "
        f"cleaned, stored as {', '.join(map(str, results['histories']))} days of history; the batch's "
        "responses stored before the last day; best of 3. Refresh: what stage 2 does now (stored rows carried "
        "over, newer parts read); full rebuild: every drop read, as before.",
        "",
        "| each day | drops of history | batch | rows in history | refresh: parts / rows read / rows carried "
        "| refresh s | full rebuild: rows read | full rebuild s | refresh / full rebuild | full scan s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['scenario']} | {row['drops']} | {row['batch']} | {row['rows_in_history']:,} "
            f"| {row['refresh_parts_read']} / {row['refresh_rows_read']:,} / {row['refresh_rows_carried']:,} "
            f"| {row['refresh_s']} | {row['full_rebuild_rows_read']:,} | {row['full_rebuild_s']} "
            f"| {row['refresh_over_full_rebuild']} | {row['full_scan_s']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
