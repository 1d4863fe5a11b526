"""Measurement plumbing for the benchmarks: child processes with their own peak RSS, machine facts, and
cached sample drops."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work"
WORKLOADS = BENCH_DIR / "workloads.py"
COMPLETE_MARKER = ".complete"


@dataclass
class ChildRun:
    """One workload run in a fresh interpreter."""

    result: dict  # what the workload printed (its own timings and counts)
    process_seconds: float  # interpreter start to exit, imports included
    peak_rss_mb: float  # the child's own high-water mark (not the max over all children so far)
    rss_timeline: list[tuple[float, float]]  # (seconds since start, RSS MB), sampled: where the peak is
    load_average: tuple[float, float, float]  # just before the run: other work on the machine skews times


def run_child(args: list[str], sample_every: float = 0.25) -> ChildRun:
    """Run `python benchmarks/workloads.py ARGS`; its last stdout line must be a JSON object.

    os.wait4 gives this child's own rusage. getrusage(RUSAGE_CHILDREN) would report the largest child
    waited for so far, so a big baseline run would mask every later, smaller one.
    """
    command = [sys.executable, str(WORKLOADS), *args]
    load = os.getloadavg()
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO_ROOT, text=True) as child:
        sampler = _RssSampler(child.pid, started, sample_every)
        sampler.start()
        stdout = child.stdout.read()  # stderr passes through to the console
        sampler.stop()
        # Reap the child ourselves (communicate()/wait() would, and lose its rusage).
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"workload {args[0]} failed with exit code {child.returncode}")
    lines = [line for line in stdout.splitlines() if line.strip()]
    peak = usage.ru_maxrss / 1024  # KiB on Linux
    return ChildRun(json.loads(lines[-1]), seconds, peak, sampler.timeline(), load)


class _RssSampler(threading.Thread):
    """Polls the child's VmRSS from /proc: ru_maxrss gives the peak, this shows when it happens."""

    def __init__(self, pid: int, started: float, every: float):
        super().__init__(daemon=True)
        self.pid, self.started, self.every = pid, started, every
        self.samples: list[tuple[float, float]] = []
        self._done = threading.Event()

    def run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while not self._done.wait(self.every):
            try:
                text = status.read_text()
            except OSError:  # exited (or not Linux)
                return
            for line in text.splitlines():
                if line.startswith("VmRSS:"):
                    rss_mb = int(line.split()[1]) / 1024
                    self.samples.append((round(time.perf_counter() - self.started, 2), round(rss_mb, 1)))

    def stop(self) -> None:
        self._done.set()
        self.join()

    def timeline(self, points: int = 120) -> list[tuple[float, float]]:
        """At most `points` samples (every n-th, keeping the largest) so results stay readable."""
        if len(self.samples) <= points:
            return self.samples
        step = -(-len(self.samples) // points)
        return [
            max(self.samples[i : i + step], key=lambda sample: sample[1])
            for i in range(0, len(self.samples), step)
        ]


def machine_facts() -> dict:
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in ("pandas", "pyarrow", "duckdb", "orjson", "ijson")},
        "ijson_backend": _ijson_backend(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _ijson_backend() -> str:
    import ijson

    return ijson.backend


def warm_page_cache(path: Path) -> None:
    """Read the file once so every contender starts with it in the page cache, whichever runs first."""
    with open(path, "rb") as stream:
        while stream.read(16 << 20):
            pass


# ----------------------------------------------------------------------------------------- sample drops


@dataclass(frozen=True)
class DropSpec:
    file_format: str  # json | jsonl
    target_mb: int
    learners: int
    seed: int

    @property
    def folder(self) -> Path:
        name = f"{self.file_format}-{self.target_mb}mb-{self.learners}learners-seed{self.seed}"
        return WORK_DIR / "drops" / name


@dataclass(frozen=True)
class Drop:
    path: Path
    summary: Path  # the generator's _generator_summary.json (its learners, its ground truth)
    records: int  # top-level rows, from the generator's summary
    expected_kept: int  # responses stage 1 must keep, from the generator's ground truth


def ensure_drop(spec: DropSpec) -> Drop:
    """A single-file drop for `spec`, made by the project's sample-data generator on first use, then cached."""
    marker = spec.folder / COMPLETE_MARKER
    if not marker.exists():
        shutil.rmtree(spec.folder, ignore_errors=True)
        print(f"generating {spec.folder.name} (cached for later runs) ...", file=sys.stderr, flush=True)
        options = ["--target-mb", spec.target_mb, "--learners", spec.learners, "--seed", spec.seed]
        run = run_child(["generate", str(spec.folder), spec.file_format, *map(str, options)])
        print(f"  generated in {run.process_seconds:.0f} s", file=sys.stderr, flush=True)
        marker.write_text(json.dumps(run.result))
    facts = json.loads(marker.read_text())
    summary = spec.folder / facts.get("summary", "_generator_summary.json")
    return Drop(spec.folder / facts["path"], summary, facts["records"], facts["kept_count"])


def machine_line(facts: dict) -> str:
    """The machine in one line, for a results file."""
    return f"{facts['cpu_model']}, {facts['cores']} cores, {facts['memory_gb']} GB, Python {facts['python']}"


def write_results(output: Path, results: dict, markdown: str) -> None:
    """`<output>.json` and `<output>.md`, and the table on stdout."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    output.with_suffix(".md").write_text(markdown)
    print(markdown)
