"""Benchmark workloads, each run by bench_ingestion.py in a fresh interpreter so its peak RSS is its own.

    python benchmarks/workloads.py generate OUT_DIR json|jsonl --target-mb MB --learners N --seed S
    python benchmarks/workloads.py stage1-baseline INPUT OUT_DIR
    python benchmarks/workloads.py stage1-ours INPUT OUT_DIR [--workers N] [--profile STATS_FILE]
    python benchmarks/workloads.py stage1-duckdb INPUT OUT_DIR
    python benchmarks/workloads.py stage1-cli INPUT OUT_DIR
    python benchmarks/workloads.py framing MB [MB ...]
    python benchmarks/workloads.py compare BASELINE_DIR OURS_DIR
    python benchmarks/workloads.py stage2 WAREHOUSE [--learners N] [--per-run N] [--singles N]

Each prints one JSON object as its last stdout line. Timings inside are wall-clock (perf_counter) around
the work itself, so they exclude interpreter start-up and imports; the parent adds the process wall time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

CHUNK_SIZE = 200_000  # the asset's default (cleaning.DEFAULT_CHUNK_SIZE), also the original system's


def generate(args: argparse.Namespace) -> dict:
    """One uncompressed telemetry file, no audio, from the project's sample-data generator."""
    from engagement_assets.devtools.sample_data import SUMMARY_NAME, generate_landing

    summary = generate_landing(
        args.out,
        learners=args.learners,
        seed=args.seed,
        target_mb=args.target_mb,
        audio=False,
        files=1,
        formats=args.format,
    )
    (only,) = summary.files
    return {
        "path": only.path,
        "summary": SUMMARY_NAME,
        "records": only.records,
        "kept_count": only.kept_count,
        "bytes": only.bytes_on_disk,
    }


def stage1_baseline(args: argparse.Namespace) -> dict:
    import baseline_original

    started = time.perf_counter()
    stats = baseline_original.run(args.input, args.out_dir, CHUNK_SIZE)
    return {**stats, "seconds": time.perf_counter() - started}


def stage1_ours(args: argparse.Namespace) -> dict:
    from engagement_assets.ingestion.cleaning import clean_drop, default_workers

    # Without --workers, the asset's default: parser processes for big drops (`workers: 0`).
    workers = args.workers or default_workers(args.input.stat().st_size)

    def clean() -> tuple:
        with open(args.input, "rb") as stream:
            return clean_drop(stream, args.input.name, args.out_dir, chunk_size=CHUNK_SIZE, workers=workers)

    started = time.perf_counter()
    with TreeUsage() as tree:
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            parts, report, _, _ = profiler.runcall(clean)
            profiler.dump_stats(args.profile)
        else:
            parts, report, _, _ = clean()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "workers": workers,
        "peak_tree_pss_mb": tree.peak_mb,
        "tree_cpu_seconds": tree.cpu_seconds(),
        "records": report.records,
        "events": report.events,
        "kept": report.kept,
        "learners": report.learners,
        "chunks": report.chunks,
        "dropped": dict(report.dropped),
        "quarantined": dict(report.quarantined),
        "parts": [str(path) for path in parts.files],
    }


class TreeUsage:
    """Peak proportional set size (PSS) and CPU time of this process and all its descendants (the parser
    workers live under a forkserver), sampled from /proc. PSS shares pages between the processes that map
    them, so the sum is the memory the whole tree really uses; summing RSS would count shared pages twice.
    CPU seconds say what a run costs whatever else the machine is doing (a worker's last sample can miss
    up to one interval of its time)."""

    def __init__(self, every: float = 0.1):
        import threading

        self.every, self.peak_mb = every, 0.0
        self._started = time.process_time()
        self._descendants_cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeUsage:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._own_cpu = time.process_time() - self._started

    def cpu_seconds(self) -> float:
        return self._own_cpu + sum(self._descendants_cpu.values())

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.every):
            pids = _tree(me)
            self.peak_mb = max(self.peak_mb, sum(_pss_kb(pid) for pid in pids) / 1024)
            for pid in pids[1:]:
                self._descendants_cpu[pid] = max(self._descendants_cpu.get(pid, 0.0), _cpu_seconds(pid))


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            return next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


# The query a user would write instead of the platform: every RESPONSE/SPEAK record, to Parquet.
DUCKDB_QUERY = """COPY (SELECT * FROM read_json({path}, format = 'newline_delimited')
                        WHERE events ->> 'eid' = 'RESPONSE' AND events -> 'edata' ->> 'type' = 'SPEAK')
                  TO {out} (FORMAT parquet)"""


def stage1_duckdb(args: argparse.Namespace) -> dict:
    import duckdb

    out = args.out_dir / "responses.parquet"
    started = time.perf_counter()
    with TreeUsage() as tree:
        con = duckdb.connect()
        (rows,) = con.execute(DUCKDB_QUERY.format(path=_sql_text(args.input), out=_sql_text(out))).fetchone()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows_written": rows, "tree_cpu_seconds": tree.cpu_seconds()}


def stage1_cli(args: argparse.Namespace) -> dict:
    """`dagster asset materialize` of cleaned_telemetry for this drop, on a fresh instance: what a user
    pays from the command line, Dagster's start-up and the I/O manager's commit included."""
    home, landing, warehouse = (args.out_dir / name for name in ("dagster_home", "landing", "warehouse"))
    home.mkdir()
    shutil.copyfile(_REPO / "dagster.yaml", home / "dagster.yaml")
    (landing / "telemetry").mkdir(parents=True)
    drop = landing / "telemetry" / args.input.name
    try:
        os.link(args.input, drop)  # the same bytes, a regular file, no copy
    except OSError:
        shutil.copyfile(args.input, drop)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ENGAGEMENT_LANDING_URL": str(landing),
        "ENGAGEMENT_STORAGE_URL": str(warehouse),
    }
    register = f"import dagster as dg; dg.DagsterInstance.get().add_dynamic_partitions('telemetry_drops', [{args.input.name!r}])"
    subprocess.run([sys.executable, "-c", register], env=env, check=True, cwd=_REPO)
    command = ["dagster", "asset", "materialize", "-m", "engagement_assets.definitions"]
    command += ["--select", "cleaned_telemetry", "--partition", args.input.name]
    started = time.perf_counter()
    subprocess.run(
        command, env=env, check=True, cwd=_REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    seconds = time.perf_counter() - started
    rows = _parquet_rows(warehouse / "cleaned_telemetry" / args.input.name)
    shutil.rmtree(args.out_dir / "warehouse", ignore_errors=True)
    return {"seconds": seconds, "kept": rows}


def _parquet_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(part).metadata.num_rows for part in sorted(folder.glob("*.parquet")))


def framing(args: argparse.Namespace) -> dict:
    """Seconds to frame (and parse) a compact JSON array holding one record of each size: linear framing
    takes time proportional to the size; rescanning the record after every read block, quadratic."""
    from engagement_assets.ingestion.records import Malformed, iter_records

    seconds = {}
    for size_mb in args.sizes:
        data = _one_record_array(int(size_mb * 1_000_000))
        started = time.perf_counter()
        items = list(iter_records(io.BytesIO(data), "framing.json"))
        seconds[str(size_mb)] = time.perf_counter() - started
        assert len(items) == 1 and not isinstance(items[0], Malformed), items[:1]
    return {"seconds_by_mb": seconds}


def _one_record_array(size: int) -> bytes:
    """`[record]` in compact JSON: many small nested objects whose strings hold brackets and escaped
    quotes, a token every few bytes as in telemetry."""
    text = 'a\\"b}{[' * 4
    fields = ",".join(f'"k{i}":{{"v":"{text}","list":[{i},"]"]}}' for i in range(size // 70))
    return ('[{"events":{"eid":"IMPRESSION","edata":{' + fields + "}}}]").encode()


def compare(args: argparse.Namespace) -> dict:
    """Do both implementations keep the same responses? Keyed on (event_mid, event_ets), untimed."""
    import duckdb

    con = duckdb.connect()
    # Views cannot take prepared parameters, hence the quoted paths.
    base_csvs, our_parts = _sql_text(args.baseline_dir / "*.csv"), _sql_text(args.ours_dir / "part-*.parquet")
    con.execute(
        f"""CREATE VIEW base AS SELECT event_mid, CAST(event_ets AS TIMESTAMP) AS event_ets, user_id
            FROM read_csv({base_csvs}, all_varchar = true, header = true)"""
    )
    con.execute(f"CREATE VIEW ours AS SELECT event_mid, event_ets, user_id FROM read_parquet({our_parts})")
    # The original dedupes within each chunk only; a copy in another chunk survives there.
    base_rows, base_keys = con.execute(
        "SELECT count(*), count(DISTINCT (event_mid, event_ets)) FROM base"
    ).fetchone()
    ours_rows = con.execute("SELECT count(*) FROM ours").fetchone()[0]
    only_base, only_ours, user_differs = con.execute(
        """WITH b AS (SELECT DISTINCT ON (event_mid, event_ets) * FROM base)
           SELECT count(*) FILTER (WHERE o.event_mid IS NULL),
                  count(*) FILTER (WHERE b.event_mid IS NULL),
                  count(*) FILTER (WHERE b.user_id IS DISTINCT FROM o.user_id
                                   AND b.event_mid IS NOT NULL AND o.event_mid IS NOT NULL)
           FROM b FULL JOIN ours o
             ON b.event_mid IS NOT DISTINCT FROM o.event_mid AND b.event_ets IS NOT DISTINCT FROM o.event_ets"""
    ).fetchone()
    return {
        "baseline_rows": base_rows,
        "baseline_distinct_keys": base_keys,
        "baseline_cross_chunk_duplicates": base_rows - base_keys,
        "ours_rows": ours_rows,
        "only_in_baseline": only_base,
        "only_in_ours": only_ours,
        "user_id_differs": user_differs,
        "same_responses": only_base == 0 and only_ours == 0 and user_differs == 0,
    }


_REPO = Path(__file__).resolve().parent.parent


def _sql_text(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def stage2(args: argparse.Namespace) -> dict:
    """Full scan vs batched extraction vs one learner per call, on a local warehouse."""
    from engagement_assets.ingestion.events import RESPONSE_SCHEMA
    from engagement_assets.responses.extract import cleaned_part_keys, extract_learner_responses
    from engagement_assets.storage.parquet import read_parquet
    from engagement_assets.storage.store import LocalStore

    store = LocalStore(args.warehouse)
    keys = cleaned_part_keys(store)
    rng = random.Random(args.seed)
    learners = _learners(args, store, keys, rng)

    def full_scan():
        return read_parquet(store, keys, schema=RESPONSE_SCHEMA)

    full_scan()  # warm the page cache and pyarrow's allocator; the timed scans below are all warm
    scan_seconds = [_timed(full_scan)[1] for _ in range(args.repeat + 2)]
    table = full_scan()
    # The first extraction pays one-off costs (lazy imports, kernel registration) that no run repeats.
    extract_learner_responses(store, learners[:1])

    runs = _batches(learners, args.per_run)
    batched = [_backfill(store, runs) for _ in range(args.repeat)]  # best of N: the machine may be shared
    frames = batched[0][0]
    batched_calls = min((calls for _, calls in batched), key=sum)
    shuffled = learners[:]
    rng.shuffle(shuffled)
    shuffled_calls = min(
        (_backfill(store, _batches(shuffled, args.per_run))[1] for _ in range(args.repeat)), key=sum
    )

    singles = rng.sample(learners, min(args.singles, len(learners)))
    single_seconds = [
        _timed(lambda learner=learner: extract_learner_responses(store, [learner]))[1] for learner in singles
    ]
    per_learner = statistics.mean(single_seconds)
    return {
        "parts": len(keys),
        "rows": table.num_rows,
        "bytes_on_disk": sum(stored.size for stored in store.list_files("cleaned_telemetry/")),
        "distinct_user_ids": len(set(table.column("user_id").to_pylist())),
        "learners": len(learners),
        "learners_source": "generator" if args.learners_from else "cleaned data",
        "learners_with_rows": sum(1 for frame in frames.values() if len(frame)),
        "learners_per_run": args.per_run,
        "repeats": args.repeat,
        "full_scan_seconds": min(scan_seconds),
        "full_scan_seconds_all": scan_seconds,
        "batched_seconds": sum(batched_calls),
        "batched_call_seconds": batched_calls,
        "batched_seconds_all": [sum(calls) for _, calls in batched],
        "batched_rows": sum(len(frame) for frame in frames.values()),
        "batched_rows_expected": _rows_of(table, learners),
        "batched_shuffled_seconds": sum(shuffled_calls),
        "single_calls_timed": len(singles),
        "single_seconds_mean": per_learner,
        "single_seconds_median": statistics.median(single_seconds),
        "single_extrapolated_seconds": per_learner * len(learners),
        "row_groups": _row_group_pruning(store, keys, runs[0], singles[0]),
        "read_only_seconds": _read_only(store, keys, runs, args.repeat),
    }


def _batches(learners: list[str], size: int) -> list[list[str]]:
    return [learners[start : start + size] for start in range(0, len(learners), size)]


def _backfill(store, runs: list[list[str]]) -> tuple[dict, list[float]]:
    """Every run of a batched backfill: all learners' frames, and each call's seconds."""
    from engagement_assets.responses.extract import extract_learner_responses

    frames, seconds = {}, []
    for run in runs:
        extracted, elapsed = _timed(lambda run=run: extract_learner_responses(store, run))
        frames.update(extracted.responses)
        seconds.append(elapsed)
    return frames, seconds


def _learners(args: argparse.Namespace, store, keys: list[str], rng: random.Random) -> list[str]:
    """The learners to extract, sorted: dynamic partition keys are registered in sorted order, so a
    backfill's runs take consecutive keys. The generator's learners are what the `users` partitions hold
    (some have no English responses); without them, a sample of the user_ids in the cleaned data."""
    if args.learners_from:
        known = [learner["user_id"] for learner in json.loads(args.learners_from.read_text())["learners"]]
        return sorted(rng.sample(known, min(args.learners, len(known))))
    from engagement_assets.storage.parquet import read_parquet

    all_users = sorted(set(read_parquet(store, keys, columns=["user_id"]).column("user_id").to_pylist()))
    return sorted(rng.sample(all_users, min(args.learners, len(all_users))))


def _read_only(store, keys: list[str], runs: list[list[str]], repeat: int) -> dict:
    """Only the Parquet read of a batched backfill (no pandas), with the filter extract.py uses and with
    a min/max range added, which lets the scanner skip row groups by their statistics."""
    import pyarrow.compute as pc

    from engagement_assets.ingestion.events import RESPONSE_SCHEMA
    from engagement_assets.storage.parquet import read_parquet

    user = pc.field("user_id")
    shapes = {
        "isin": lambda run: user.isin(run),
        "isin_and_range": lambda run: (user >= min(run)) & (user <= max(run)) & user.isin(run),
    }

    def read(expression):
        return read_parquet(store, keys, schema=RESPONSE_SCHEMA, filter=expression)

    seconds = {}
    for name, shape in shapes.items():
        expressions = [shape(run) for run in runs]
        seconds[name] = min(
            sum(_timed(partial(read, each))[1] for each in expressions) for _ in range(repeat)
        )
    return seconds


def _row_group_pruning(store, keys: list[str], batch: list[str], learner: str) -> dict:
    """How many row groups survive statistics-based pruning for each filter shape.

    split_by_row_group(filter) applies the same min/max test the scanner does before reading a row group.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from engagement_assets.ingestion.events import RESPONSE_SCHEMA

    filesystem, root = store.arrow()
    dataset = ds.dataset(
        [f"{root}/{key}" for key in keys], filesystem=filesystem, format="parquet", schema=RESPONSE_SCHEMA
    )
    fragments = list(dataset.get_fragments())
    user = pc.field("user_id")
    filters = {
        "isin_batch": user.isin(batch),
        "isin_one_learner": user.isin([learner]),
        "equals_one_learner": user == learner,
        "range_of_batch": (user >= min(batch)) & (user <= max(batch)),
    }
    counts = {"total": sum(fragment.num_row_groups for fragment in fragments)}
    for name, expression in filters.items():
        counts[name] = sum(len(fragment.split_by_row_group(expression)) for fragment in fragments)
    return counts


def _rows_of(table, learners: list[str]) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.sum(pc.is_in(table.column("user_id"), value_set=pa.array(learners))).as_py() or 0


def _timed(function) -> tuple:
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="one benchmark workload")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate")
    make.add_argument("out", type=Path)
    make.add_argument("format", choices=["json", "jsonl"])
    make.add_argument("--target-mb", type=float, required=True)
    make.add_argument("--learners", type=int, required=True)
    make.add_argument("--seed", type=int, required=True)
    baseline = commands.add_parser("stage1-baseline")
    baseline.add_argument("input", type=Path)
    baseline.add_argument("out_dir", type=Path)
    ours = commands.add_parser("stage1-ours")
    ours.add_argument("input", type=Path)
    ours.add_argument("out_dir", type=Path)
    ours.add_argument("--profile", type=Path, help="write cProfile stats of clean_drop here")
    ours.add_argument("--workers", type=int, default=0, help="parser processes (default: the asset's)")
    for name in ("stage1-duckdb", "stage1-cli"):
        other = commands.add_parser(name)
        other.add_argument("input", type=Path)
        other.add_argument("out_dir", type=Path)
    scaling = commands.add_parser("framing")
    scaling.add_argument("sizes", type=float, nargs="+", help="record sizes in MB")
    check = commands.add_parser("compare")
    check.add_argument("baseline_dir", type=Path)
    check.add_argument("ours_dir", type=Path)
    extract = commands.add_parser("stage2")
    extract.add_argument("warehouse", type=Path)
    extract.add_argument("--learners", type=int, default=2000)
    extract.add_argument("--learners-from", type=Path, help="a generator summary: extract its learners")
    extract.add_argument("--per-run", type=int, required=True)
    extract.add_argument("--singles", type=int, default=50)
    extract.add_argument("--seed", type=int, default=7)
    extract.add_argument("--repeat", type=int, default=3, help="backfills timed; the best counts")
    return parser


WORKLOADS = {
    "generate": generate,
    "stage1-baseline": stage1_baseline,
    "stage1-ours": stage1_ours,
    "stage1-duckdb": stage1_duckdb,
    "stage1-cli": stage1_cli,
    "framing": framing,
    "compare": compare,
    "stage2": stage2,
}


def main() -> None:
    args = _parser().parse_args()
    result = WORKLOADS[args.command](args)
    sys.stdout.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
