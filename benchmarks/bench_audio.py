"""Stage 4 benchmark: the audio copier over generated clips served with added latency per GET and HEAD.

    python benchmarks/bench_audio.py                    # 2,000 clips, ~6 min: results/audio.json and .md
    python benchmarks/bench_audio.py --quick            # 200 clips, a smoke run (prints only)
    python benchmarks/bench_audio.py --no-server-capped # the primary table only

Primary measurement (copier-limited). A minimal S3-compatible object server, stdlib `ThreadingHTTPServer`
in a child process, holds the generated clips in memory and answers path-style `GET`/`HEAD
/<bucket>/<key>` as S3 would for the copier (`Content-Length`, `ETag`, `Last-Modified`, `Content-Type`,
404 `NoSuchKey`), after sleeping `--latency` seconds, as a far-away bucket would. The server does next to
no work per request, so what limits the copier is the copier's own process (boto3, hashing, files,
threads), not the server. The real `AudioCopier` copies every clip into a fresh local folder sequentially
(workers=1), then with `--workers` into another, then twice more over that folder (every clip already
there: `skipped_existing`, one HEAD per clip). The source store is built by the asset's own `_source` from
`AWS_ENDPOINT_URL`, so timeouts, pool size and retries are production's.

Secondary measurement (server-capped). The same runs against moto, the local S3 server the test suite
uses, behind the suite's FaultProxy adding the same latency, plus a parallel run into an S3 bucket. On a
small machine moto and the Python proxy cap out at a few hundred GETs/s whatever the client does; raw
boto3 GET probes (no copier) against each server show that ceiling.

The servers run in child processes by default, so they have their own interpreter lock and the peak RSS
measured here is the copier's, not the servers' clips; `--servers-in-process` runs them in this process,
as the test suite does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

import boto3
import numpy as np
from botocore.config import Config

from engagement_assets.audio.assets import _source
from engagement_assets.audio.copier import (
    SKIPPED_EXISTING,
    STORED,
    AudioCopier,
    Clip,
    CopyPolicy,
    Known,
)
from engagement_assets.devtools.sample_data.audio import voiced, wav_bytes
from engagement_assets.storage.store import LocalStore, S3Store

RESULTS = Path(__file__).resolve().parent / "results" / "audio.json"
SOURCE_BUCKET = "bench-audio-source"
DESTINATION_BUCKET = "bench-audio-destination"
LEARNERS = 20  # clips are spread over this many `recordings/<learner>` folders, as a batch run would
TARGET_SPEEDUP = 15.0
LISTEN_BACKLOG = 256
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


# --------------------------------------------------------------------------------------------- the clips


def generate(count: int) -> Iterator[tuple[str, bytes]]:
    """`count` recordings of 1-3 s (16 kHz mono WAV), the same ones on every run and in every process."""
    for i in range(count):
        rng = np.random.default_rng([7, i])
        key = f"learner-ai-demo/{rng.bytes(8).hex()}-{1_700_000_000_000 + i * 1_337}-{i}.wav"
        yield key, wav_bytes(voiced(rng, float(rng.uniform(1.0, 3.0)), 0.25))


@dataclass(frozen=True)
class Entry:
    """One clip as the object server holds it: what a copy must reproduce."""

    key: str
    size: int
    sha256: str


def copier_clips(catalogue: list[Entry]) -> list[Clip]:
    return [
        Clip(f"mid-{i}", 1_700_000_000 + i, entry.key, f"recordings/learner-{i % LEARNERS:02d}")
        for i, entry in enumerate(catalogue)
    ]


def manifest_facts(clips: list[Clip], rows: list[dict]) -> dict[str, Known]:
    """What the asset's `_known` reads back from the earlier run's manifest, by storage key."""
    return {
        f"{clip.prefix}/{clip.audio_link}": Known(row["bytes"], row["sha256"], row["format"])
        for clip, row in zip(clips, rows, strict=True)
    }


# ------------------------------------------------------------------------------------ the object server


class ObjectServer(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG  # listen() backlog; socketserver's default of 5 drops bursts
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing its keep-alive socket
            super().handle_error(request, client_address)


def object_server(bucket: str, objects: dict[str, tuple[bytes, str]], latency: float) -> ObjectServer:
    """The smallest S3 the copier's source store can use unchanged: path-style `GET` and `HEAD` of
    `/<bucket>/<key>` from `objects` (key -> (data, ETag)), each after sleeping `latency`; `HEAD /<bucket>`
    answers 200 (boto3's head_bucket). Anything else is answered with S3's XML error, without latency
    beyond the GET/HEAD sleep. Bodies are written from memory in one `write` with TCP_NODELAY, so a
    response costs the server a dict lookup, a few headers and a socket write."""
    last_modified = formatdate(time.time(), usegmt=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:
            return

        def do_GET(self) -> None:
            self._answer(body=True)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def _answer(self, body: bool) -> None:
            if latency:
                time.sleep(latency)
            # boto3 may add a query (`?x-id=GetObject`); the key is the rest of the path after the bucket.
            name, _, key = unquote(urlsplit(self.path).path).lstrip("/").partition("/")
            if name != bucket:
                return self._error(404, "NoSuchBucket", "The specified bucket does not exist.", name, body)
            if not key:
                if body:  # GET /<bucket> is ListObjects: not needed by the copier's source
                    return self._error(501, "NotImplemented", "Only GET and HEAD of objects.", name, body)
                return self._send(200, b"", {"Content-Type": "application/xml"}, body)
            found = objects.get(key)
            if found is None:
                return self._error(404, "NoSuchKey", "The specified key does not exist.", key, body)
            data, etag = found
            headers = {
                "Content-Type": "audio/wav",
                "ETag": etag,
                "Last-Modified": last_modified,
                "Accept-Ranges": "bytes",
            }
            return self._send(200, data, headers, body)

        def _refuse(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.close_connection = True
            self._error(501, "NotImplemented", "Only GET and HEAD of objects.", self.path, True)

        do_PUT = do_POST = do_DELETE = _refuse

        def _error(self, status: int, code: str, message: str, resource: str, body: bool) -> None:
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
                f"<Resource>{escape(resource)}</Resource><RequestId>bench</RequestId></Error>"
            ).encode()
            self._send(status, xml, {"Content-Type": "application/xml"}, body)

        def _send(self, status: int, payload: bytes, headers: dict[str, str], body: bool) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("x-amz-request-id", "bench")
            self.send_header("Content-Length", str(len(payload)))  # for HEAD too: the size a GET returns
            self.end_headers()
            if body and payload:
                self.wfile.write(payload)

    server = ObjectServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextmanager
def running_object_servers(latency: float, count: int) -> Iterator[dict]:
    """The clips generated and held in memory; one server with the latency, one without (for probes)."""
    objects, catalogue = {}, []
    for key, data in generate(count):
        objects[key] = (data, f'"{hashlib.md5(data).hexdigest()}"')  # a single-part S3 ETag is the MD5
        catalogue.append([key, len(data), hashlib.sha256(data).hexdigest()])
    servers = [object_server(SOURCE_BUCKET, objects, latency), object_server(SOURCE_BUCKET, objects, 0.0)]
    try:
        objects_url, bare_url = ("http://{}:{}".format(*s.server_address[:2]) for s in servers)
        yield {"urls": {"objects": objects_url, "bare_objects": bare_url}, "catalogue": catalogue}
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


# ------------------------------------------------------------------------------------ moto + FaultProxy


@contextmanager
def running_moto(latency: float) -> Iterator[dict]:
    """moto's S3 server, the test suite's FaultProxy with the latency in front of it (TCP_NODELAY and the
    latency on GET and HEAD are the proxy's own now), and a second proxy without latency for probes."""
    from moto.server import ThreadedMotoServer

    from engagement_assets_tests.faults import FaultProxy

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request otherwise
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    try:
        with FaultProxy(moto_url) as proxy, FaultProxy(moto_url) as bare_proxy:
            proxy.latency_seconds = latency
            yield {"urls": {"moto": moto_url, "proxy": proxy.url, "bare_proxy": bare_proxy.url}}
    finally:
        moto.stop()


SERVERS = {"objects": running_object_servers, "moto": running_moto}


@dataclass
class Servers:
    urls: dict[str, str]
    cpu_seconds: Callable[[], float | None]  # CPU used so far by the server process (None: in this one)
    catalogue: list[Entry] | None = None


def serve(kind: str, latency: float, count: int) -> None:
    """Child-process mode: start the servers, print what the parent needs, run until stdin closes."""
    arguments = (latency, count) if kind == "objects" else (latency,)
    with SERVERS[kind](*arguments) as facts:
        print(json.dumps(facts), flush=True)
        sys.stdin.read()


@contextmanager
def servers(kind: str, latency: float, count: int, in_process: bool) -> Iterator[Servers]:
    if in_process:
        arguments = (latency, count) if kind == "objects" else (latency,)
        with SERVERS[kind](*arguments) as facts:
            yield _servers(facts, lambda: None)
        return
    command = [sys.executable, __file__, "--serve", kind, "--latency", str(latency), "--clips", str(count)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as child:
        try:
            facts = json.loads(child.stdout.readline())
            yield _servers(facts, lambda: _process_cpu_seconds(child.pid))
        finally:
            child.stdin.close()  # the child's stdin.read() returns and it shuts its servers down
            child.wait(timeout=30)


def _servers(facts: dict, cpu_seconds: Callable[[], float | None]) -> Servers:
    catalogue = [Entry(*entry) for entry in facts["catalogue"]] if "catalogue" in facts else None
    return Servers(facts["urls"], cpu_seconds, catalogue)


def _process_cpu_seconds(pid: int) -> float:
    # utime and stime (fields 14 and 15 of /proc/PID/stat) cover every thread of the process.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seed_moto(moto_url: str, count: int, catalogue: list[Entry]) -> float:
    """Put the same generated clips straight into moto, not through the proxy (setup is not measured), one
    at a time so this process never holds them all. Returns the seconds it took."""
    started = time.perf_counter()
    client = boto3.client("s3", endpoint_url=moto_url, config=Config(max_pool_connections=8))
    for bucket in (SOURCE_BUCKET, DESTINATION_BUCKET):
        client.create_bucket(Bucket=bucket)
    expected = {entry.key: entry for entry in catalogue}

    def put(item: tuple[str, bytes]) -> None:
        key, data = item
        if expected[key].size != len(data):
            raise SystemExit(f"{key}: generated {len(data)} bytes here, {expected[key].size} in the server")
        client.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=data)

    with ThreadPoolExecutor(8) as pool:
        for _ in pool.map(put, generate(count)):
            pass
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------- measurement


class PeakRss:
    """This process's peak RSS over a block. Linux lets a process reset its own high-water mark (VmHWM)
    by writing 5 to /proc/self/clear_refs, which gives an exact peak; where that is refused, VmRSS is
    sampled every 10 ms instead (which can miss a spike shorter than that)."""

    def __enter__(self) -> PeakRss:
        self.before_mb = _status_mb("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._exact = True
        except OSError:
            self._exact = False
        self._samples = [self.before_mb]
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self._samples.append(_status_mb("VmRSS"))

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._sampler.join()
        self.peak_mb = _status_mb("VmHWM") if self._exact else max(self._samples)
        self.method = "VmHWM reset via clear_refs" if self._exact else "VmRSS sampled every 10 ms"


def _status_mb(field: str) -> float:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


@dataclass(frozen=True)
class Run:
    label: str
    destination: object  # a Store
    workers: int
    expect: str  # the status every row must have
    endpoint: str  # where the source store's client points
    known: bool = False  # pass the earlier run's manifest facts, as the asset does on a re-run


def copy_run(
    run: Run, clips: list[Clip], servers: Servers, known: dict[str, Known], catalogue: list[Entry]
) -> tuple[dict, list]:
    """One `copy_all` through the real copier, timed, with its peak RSS and CPU on both sides; every row
    must have the expected status and the generated clip's size and sha256."""
    label, destination, workers, expect = run.label, run.destination, run.workers, run.expect
    policy = CopyPolicy(workers=workers)
    # `_source` builds its client from AWS_ENDPOINT_URL, as the asset does.
    os.environ["AWS_ENDPOINT_URL"] = run.endpoint
    copier = AudioCopier(_source(f"s3://{SOURCE_BUCKET}", policy), destination, policy)
    load = os.getloadavg()[0]
    server_cpu = servers.cpu_seconds()
    cpu = time.process_time()
    with PeakRss() as rss:
        started = time.perf_counter()
        rows = copier.copy_all(clips, known if run.known else None)
        seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    server_cpu = servers.cpu_seconds() - server_cpu if server_cpu is not None else None
    statuses = Counter(row["status"] for row in rows)
    if statuses[expect] != len(clips):
        errors = Counter(row["error"] for row in rows if row["status"] != expect)
        raise SystemExit(
            f"{label}: expected every clip {expect}, got {dict(statuses)}: {errors.most_common(3)}"
        )
    wrong = [
        row["audio_link"]
        for row, entry in zip(rows, catalogue, strict=True)
        if (row["bytes"], row["sha256"]) != (entry.size, entry.sha256)
    ]
    if wrong:
        raise SystemExit(f"{label}: {len(wrong)} clip(s) differ from the generated ones, e.g. {wrong[0]}")
    megabytes = sum(row["bytes"] for row in rows) / 1e6
    summary = {
        "run": label,
        "workers": workers,
        "destination": type(destination).__name__,
        "clips": len(clips),
        "megabytes": round(megabytes, 2),
        "seconds": round(seconds, 3),
        "clips_per_s": round(len(clips) / seconds, 1),
        "mb_per_s": round(megabytes / seconds, 2),
        "statuses": dict(statuses),
        "rss_before_mb": round(rss.before_mb, 1),
        "peak_rss_mb": round(rss.peak_mb, 1),
        "peak_rss_method": rss.method,
        "copier_cpu_ms_per_clip": round(1000 * cpu / len(clips), 2),
        "server_cpu_ms_per_clip": round(1000 * server_cpu / len(clips), 2)
        if server_cpu is not None
        else None,
        "copier_busy_cores": round(cpu / seconds, 2),
        "server_busy_cores": round(server_cpu / seconds, 2) if server_cpu is not None else None,
        "load_1min_before": round(load, 2),
    }
    return summary, rows


def execute(runs: list[Run], clips: list[Clip], servers: Servers, catalogue: list[Entry]) -> list[dict]:
    summaries, known = [], {}
    for run in runs:
        summary, rows = copy_run(run, clips, servers, known, catalogue)
        known = known or manifest_facts(clips, rows)  # the first run's manifest, for the re-runs
        summaries.append(summary)
        print(f"{run.label}: {summary['seconds']:.1f} s, {summary['clips_per_s']:.1f} clips/s", flush=True)
    return summaries


def copy_plan(workers: int, folder: Path, endpoint: str, name: str) -> list[Run]:
    """Sequential into a fresh folder, parallel into another, then parallel twice more over that folder."""
    parallel = LocalStore(folder / f"{name}-parallel")
    return [
        Run("sequential", LocalStore(folder / f"{name}-sequential"), 1, STORED, endpoint),
        Run("parallel", parallel, workers, STORED, endpoint),
        Run("re-run, manifest facts known", parallel, workers, SKIPPED_EXISTING, endpoint, True),
        Run("re-run, stored clips re-hashed", parallel, workers, SKIPPED_EXISTING, endpoint),
    ]


def raw_get_probe(
    name: str, endpoint: str, delayed: bool, keys: list[str], workers: int, servers: Servers
) -> dict:
    """GETs with a bare boto3 client (same config as the copier's source, no copier around it): what the
    server can serve at this concurrency, and what one GET costs each side."""
    config = Config(max_pool_connections=workers + 4, retries={"total_max_attempts": 1, "mode": "standard"})
    client = boto3.client("s3", endpoint_url=endpoint, config=config)
    client.head_bucket(Bucket=SOURCE_BUCKET)  # connect and sign once before the clock starts

    def get(key: str) -> int:
        return len(client.get_object(Bucket=SOURCE_BUCKET, Key=key)["Body"].read())

    server_cpu, cpu = servers.cpu_seconds(), time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(get, keys))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    server_cpu = servers.cpu_seconds() - server_cpu if server_cpu is not None else None
    return {
        "probe": name,
        "added_latency": delayed,
        "workers": workers,
        "gets": len(keys),
        "seconds": round(seconds, 3),
        "gets_per_s": round(len(keys) / seconds, 1),
        "ms_per_get_wall": round(1000 * seconds / len(keys), 2),
        "client_cpu_ms_per_get": round(1000 * cpu / len(keys), 2),
        "server_cpu_ms_per_get": round(1000 * server_cpu / len(keys), 2) if server_cpu is not None else None,
    }


def probes(paths: list[tuple[str, str, bool]], keys: list[str], workers: int, servers: Servers) -> list:
    """Each path at `workers` concurrency, and one at a time too where there is no added latency (with
    it, one at a time is just the sequential copy again)."""
    results = []
    for name, endpoint, delayed in paths:
        for concurrency in (workers,) if delayed else (1, workers):
            results.append(raw_get_probe(name, endpoint, delayed, keys, concurrency, servers))
    return results


# ------------------------------------------------------------------------------------------------ report


def machine_facts() -> dict:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: metadata.version(name) for name in ("boto3", "botocore", "moto")},
    }


def markdown(result: dict) -> str:
    machine, setup, primary = result["machine"], result["setup"], result["primary"]
    latency_ms = f"{setup['latency_s'] * 1000:g} ms"
    sequential, parallel = primary["runs"][0], primary["runs"][1]
    load = ", ".join(f"{value:.2f}" for value in setup["load_average_before"])
    per_clip_ms = 1000 * sequential["seconds"] / sequential["clips"]
    perfect = parallel["workers"] * sequential["clips_per_s"]
    lines = [
        f"Machine: {machine['cpu_model']}, {machine['cores']} cores, {machine['memory_gb']} GB RAM, "
        f"Python {machine['python']}; boto3 {machine['packages']['boto3']}, moto "
        f"{machine['packages']['moto']}. Load average before the run: {load} (1, 5, 15 min). "
        f"{setup['clips']:,} generated clips ({setup['megabytes']:.1f} MB of 16 kHz mono WAV, 1-3 s each); "
        f"{latency_ms} added to every GET and HEAD; {setup['workers']} workers for the parallel runs; "
        f"servers {setup['servers']}; copies into a local folder unless noted; every copy checked "
        "against the generated clip's size and sha256.",
        "",
        f"**Copier-limited** (primary): {primary['server']}.",
        "",
        *_run_table(primary["runs"]),
        "",
        f"- {parallel['workers']} workers vs sequential: **{primary['speedup']:.1f}x** (target ≥ "
        f"{TARGET_SPEEDUP:g}x: {'meets it' if primary['meets_target'] else '**misses it**'}). Perfect "
        f"overlap would be {parallel['workers']}x, {perfect:.0f} clips/s at the sequential "
        f"{per_clip_ms:.1f} ms per clip ({latency_ms} of it the added latency); the parallel run reached "
        f"{100 * parallel['clips_per_s'] / perfect:.0f}% of that.",
        f"- Peak RSS of the copier's process during the {parallel['workers']}-worker run: "
        f"**{parallel['peak_rss_mb']:.0f} MB**, {parallel['peak_rss_mb'] - parallel['rss_before_mb']:+.0f} MB "
        f"over the {parallel['rss_before_mb']:.0f} MB it held before (interpreter, dagster, boto3; "
        f"{parallel['peak_rss_method']}).",
        _bottleneck(parallel, machine["cores"], "the object server"),
    ]
    bare = _probe(primary["probes"], parallel["workers"], delayed=True)
    if bare:
        apart = parallel["server_busy_cores"] is not None  # with the server in this process, no telling
        lines.append(
            f"- Plain boto3 GETs (no copier) from the same server at {bare['workers']} concurrent: "
            f"{bare['gets_per_s']:.0f} GETs/s; the copier's {parallel['clips_per_s']:.0f} clips/s is "
            f"{100 * parallel['clips_per_s'] / bare['gets_per_s']:.0f}% of that"
            + (
                ", so what stands between the copier and perfect overlap is the client process (boto3 "
                "and the threads under one interpreter lock), not this server."
                if apart
                else "."
            )
        )
    lines.append(_loads(primary["runs"]))
    if primary["probes"]:
        lines += ["", *_probe_table(primary["probes"])]
    capped = result["server_capped"]
    if capped:
        c_parallel = capped["runs"][1]
        lines += [
            "",
            f"**Server-capped** (secondary): {capped['server']}. Same clips, same copier, same latency. "
            "moto and both proxies share one child process (one interpreter lock); the proxy reads each "
            "request, forwards it over a new connection to moto and buffers the answer.",
            "",
            *_run_table(capped["runs"]),
            "",
            f"- {c_parallel['workers']} workers vs sequential: {capped['speedup']:.1f}x, capped by the "
            "local servers rather than the copier (see the probes below).",
            _bottleneck(c_parallel, machine["cores"], "the moto + proxy process"),
            _loads(capped["runs"]),
        ]
        if capped["probes"]:
            lines += ["", *_probe_table(capped["probes"])]
            ceiling = _probe(capped["probes"], c_parallel["workers"], delayed=True)
            if ceiling:
                versus = f" (the object server above: {bare['gets_per_s']:.0f})" if bare else ""
                lines += [
                    "",
                    f"Plain boto3 GETs through the proxy reach {ceiling['gets_per_s']:.0f} GETs/s at "
                    f"{ceiling['workers']} concurrent with no copier involved{versus}: that, not the "
                    "copier, is the ceiling of the copy runs in this table.",
                ]
    return "\n".join(lines)


def _probe(results: list[dict], workers: int, delayed: bool) -> dict | None:
    return next((p for p in results if p["workers"] == workers and p["added_latency"] == delayed), None)


def _bottleneck(run: dict, cores: int, server_name: str) -> str:
    text = (
        f"- During the {run['workers']}-worker run the copier's process kept "
        f"{run['copier_busy_cores']:.2f} cores busy"
    )
    if run["server_busy_cores"] is None:
        return text + " (servers in this process)."
    return text + f", {server_name} {run['server_busy_cores']:.2f} (of {cores})."


def _loads(runs: list[dict]) -> str:
    loads = [run["load_1min_before"] for run in runs]
    text = f"- 1-min load average at the start of each run: {min(loads):.2f}-{max(loads):.2f}"
    if max(loads) > 1.0:
        rows = "; ".join(f"{run['run']}: {run['load_1min_before']:.2f}" for run in runs)
        return text + f" ({rows}): other work was running on the shared machine during some rows."
    return text + "."


def _run_table(runs: list[dict]) -> list[str]:
    """One row per copy run; "vs sequential" is against the first run of the list."""
    lines = [
        "| run | workers | seconds | clips/s | MB/s | vs sequential | peak RSS MB "
        "| CPU ms/clip (copier + server) | statuses |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        statuses = ", ".join(f"{count:,} {status}" for status, count in run["statuses"].items())
        server_cpu = run["server_cpu_ms_per_clip"]
        cpu = f"{run['copier_cpu_ms_per_clip']:.1f}" + ("" if server_cpu is None else f" + {server_cpu:.1f}")
        lines.append(
            f"| {run['run']} | {run['workers']} | {run['seconds']:.1f} | {run['clips_per_s']:.1f} | "
            f"{run['mb_per_s']:.2f} | {run['clips_per_s'] / runs[0]['clips_per_s']:.1f}x | "
            f"{run['peak_rss_mb']:.0f} | {cpu} | {statuses} |"
        )
    return lines


def _probe_table(results: list[dict]) -> list[str]:
    lines = [
        f"Plain GETs of {results[0]['gets']} clips with a bare boto3 client (no copier):",
        "",
        "| path | concurrency | GETs/s | wall ms per GET | client CPU ms/GET | server CPU ms/GET |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for probe in results:
        server = probe["server_cpu_ms_per_get"]
        lines.append(
            f"| {probe['probe']} | {probe['workers']} | {probe['gets_per_s']:.1f} | "
            f"{probe['ms_per_get_wall']:.1f} | {probe['client_cpu_ms_per_get']:.2f} | "
            f"{'-' if server is None else f'{server:.2f}'} |"
        )
    return lines


# -------------------------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 clips; writes no results file")
    parser.add_argument("--workers", type=int, default=25)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added per GET and HEAD")
    parser.add_argument(
        "--server-capped",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the secondary, server-capped table: moto behind the FaultProxy (default: on)",
    )
    parser.add_argument(
        "--s3-destination",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="in the server-capped table, also copy with --workers into an S3 bucket (default: on)",
    )
    parser.add_argument("--servers-in-process", action="store_true", help="as the test suite runs them")
    parser.add_argument("--probe-gets", type=int, default=500, help="clips per GET probe; 0 skips them")
    parser.add_argument(
        "--output",
        type=Path,
        help=f"results JSON, with a .md beside it (default {RESULTS}, not with --quick)",
    )
    parser.add_argument("--serve", choices=sorted(SERVERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.clips = 200
    elif args.output is None:
        args.output = RESULTS
    return args


def primary(args, folder: Path, objects: Servers, clips: list[Clip]) -> dict:
    runs = execute(
        copy_plan(args.workers, folder, objects.urls["objects"], "objects"), clips, objects, objects.catalogue
    )
    keys = [clip.audio_link for clip in clips[: args.probe_gets]]
    paths = [
        ("object server, no latency", objects.urls["bare_objects"], False),
        (f"object server, {args.latency * 1000:g} ms per GET", objects.urls["objects"], True),
    ]
    speedup = runs[1]["clips_per_s"] / runs[0]["clips_per_s"]
    return {
        "server": f"a minimal S3-compatible object server (stdlib ThreadingHTTPServer, listen backlog "
        f"{LISTEN_BACKLOG}, TCP_NODELAY) serving the clips from memory, {args.latency * 1000:g} ms per "
        "GET and HEAD",
        "runs": runs,
        "speedup": round(speedup, 2),
        "target_speedup": TARGET_SPEEDUP,
        "meets_target": speedup >= TARGET_SPEEDUP,
        "probes": probes(paths, keys, args.workers, objects) if keys else [],
    }


def server_capped(args, folder: Path, moto: Servers, clips: list[Clip], catalogue: list[Entry]) -> dict:
    seconds = seed_moto(moto.urls["moto"], len(clips), catalogue)
    print(f"seeded moto with {len(clips):,} clips in {seconds:.1f} s", flush=True)
    plan = copy_plan(args.workers, folder, moto.urls["proxy"], "moto")
    if args.s3_destination:
        client = boto3.client("s3", endpoint_url=moto.urls["moto"], config=Config(max_pool_connections=64))
        destination = S3Store(DESTINATION_BUCKET, "", client)
        plan.append(Run("parallel, S3 destination", destination, args.workers, STORED, moto.urls["proxy"]))
    runs = execute(plan, clips, moto, catalogue)
    keys = [clip.audio_link for clip in clips[: args.probe_gets]]
    paths = [
        ("moto direct, no latency", moto.urls["moto"], False),
        ("moto behind the proxy, no latency", moto.urls["bare_proxy"], False),
        (f"moto behind the proxy, {args.latency * 1000:g} ms per GET", moto.urls["proxy"], True),
    ]
    return {
        "server": "moto (the test suite's local S3 server) behind the test suite's FaultProxy, "
        f"{args.latency * 1000:g} ms per GET and HEAD; the S3 destination is moto directly",
        "runs": runs,
        "speedup": round(runs[1]["clips_per_s"] / runs[0]["clips_per_s"], 2),
        "probes": probes(paths, keys, args.workers, moto) if keys else [],
    }


def main() -> None:
    args = parse_args()
    if args.serve:
        return serve(args.serve, args.latency, args.clips)
    os.environ.update(AWS_ENV)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)
    load_before = os.getloadavg()
    started = time.perf_counter()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-audio-")))
        objects = stack.enter_context(servers("objects", args.latency, args.clips, args.servers_in_process))
        catalogue = objects.catalogue
        megabytes = sum(entry.size for entry in catalogue) / 1e6
        print(f"object server holds {len(catalogue):,} clips ({megabytes:.1f} MB)", flush=True)
        clips = copier_clips(catalogue)
        first = primary(args, tmp, objects, clips)
        second = None
        if args.server_capped:
            moto = stack.enter_context(servers("moto", args.latency, args.clips, args.servers_in_process))
            second = server_capped(args, tmp, moto, clips, catalogue)
    result = {
        "benchmark": "stage 4 audio copy (AudioCopier.copy_all)",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": machine_facts(),
        "setup": {
            "clips": len(catalogue),
            "megabytes": round(megabytes, 2),
            "latency_s": args.latency,
            "latency_on": "GET and HEAD",
            "workers": args.workers,
            "servers": "in this process" if args.servers_in_process else "in child processes",
            "load_average_before": [round(value, 2) for value in load_before],
            "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
            "total_seconds": round(time.perf_counter() - started, 1),
        },
        "primary": first,
        "server_capped": second,
    }
    report = markdown(result)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        args.output.with_suffix(".md").write_text(report + "\n")
        print(f"wrote {args.output} and {args.output.with_suffix('.md')}")
    print()
    print(report)


if __name__ == "__main__":
    main()
