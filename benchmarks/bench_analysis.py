"""Stage 5 benchmark: Gemini analysis of 1,000 clips against the fake Gemini server limited to R requests a
minute, versus the original approach (sequential calls with a fixed delay), and a second materialization.

    python benchmarks/bench_analysis.py            # 1,000 clips at R=600: ~2.5 min, writes results/analysis.*
    python benchmarks/bench_analysis.py --quick    # 100 clips, a 6 s window: a smoke run, prints only
    python benchmarks/bench_analysis.py --rpm 300 --clips 500

Ours is the real `analyze_responses` with the clip analyzer (`GeminiClient`, rpm=R, concurrency 8, the production
defaults) and a `ResultCache` on a `LocalStore`, talking to `FakeGemini` over real HTTP through the
google-genai SDK, with 0.3 s added to every call. The original approach is a plain loop of
`client.models.generate_content` + `time.sleep(delay)`, measured on a subset and extrapolated: once with
its literal 8 s delay, once with the delay scaled to the same budget (60/R s). Each contender gets its own
fake server, so one's requests never use up another's window.

A sliding-window limit lets a client send R requests at once and then R more every window, so for a run
shorter than about two windows (1,000 clips at R=600) requests / elapsed minutes can exceed R without ever
breaking the limit. The checks that mean something are therefore the busiest window (never above R) and
the sustained share: W / the mean gap between each request and the one R places before it. A sliding
window keeps every such gap ≥ W, so the share is ≤ 1 for any client that respects the limit, and ~1 for one
that uses all of it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from google.genai import errors, types

from engagement_assets.analysis.analyze import GeminiSetup, analyze_responses
from engagement_assets.analysis.cache import clip_cache
from engagement_assets.analysis.gemini import clip_analyzer, clip_config
from engagement_assets.audio.formats import sniff_format
from engagement_assets.devtools.sample_data.audio import voiced, wav_bytes
from engagement_assets.platform.resources import gemini_resource
from engagement_assets.settings import Settings
from engagement_assets.storage.store import LocalStore, read_url
from engagement_assets_tests.fake_gemini import FakeGemini

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "gemini-2.5-flash-lite"
ORIGINAL_DELAY_S = 8.0
TARGET_SHARE = 0.9
# What the tests' clean_gemini_env fixture removes: nothing here may reach a real endpoint or key.
GEMINI_ENV = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_GEMINI_BASE_URL",
)


# -------------------------------------------------------------------------------------------------- data


def stored_clips(folder: Path, count: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`count` distinct 0.5-1 s voiced WAV files, with stage-2 responses and a stage-4 manifest for them
    (the shapes `analyze_responses` reads, as in test_analyze.py's build())."""
    folder.mkdir(parents=True, exist_ok=True)
    t0 = pd.Timestamp("2025-06-12 10:00:00")
    responses, manifest = [], []
    for i in range(count):
        data = wav_bytes(voiced(np.random.default_rng(i), 0.5 + (i % 6) / 10, 0.3))
        path = folder / f"{i}.wav"
        path.write_bytes(data)
        key = {"event_mid": f"m{i}", "event_ets": t0 + pd.Timedelta(seconds=i)}
        responses.append(
            {
                **key,
                "original_text": f"Sentence {i % 7}",
                "accuracy_percentage": 70.0,
                "audio_link": f"{i}.wav",
            }
        )
        manifest.append(
            {
                **key,
                "status": "stored",
                "format": sniff_format(data[:12]),
                "storage_path": str(path),
                "sha256": hashlib.sha256(data).hexdigest(),
                "error": None,
            }
        )
    frames = pd.DataFrame(responses), pd.DataFrame(manifest)
    for frame in frames:
        frame["event_ets"] = frame["event_ets"].astype("datetime64[ms]")
    return frames


# ---------------------------------------------------------------------------------------------- contenders


def fake_server(args: argparse.Namespace) -> FakeGemini:
    # limit/window_seconds with window 60 is exactly FakeGemini(rpm=R); --quick shortens the window.
    return FakeGemini(limit=per_window(args), window_seconds=args.window, latency_seconds=args.latency)


def per_window(args: argparse.Namespace) -> int:
    return round(args.rpm * args.window / 60)


def client_for(fake: FakeGemini):
    """The production client (GeminiResource.client(): same timeout and API version) pointed at the fake."""
    resource = gemini_resource(Settings(gemini_base_url=fake.url))
    return resource.model_copy(update={"api_key": "bench-key"}).client()


def gemini_setup(fake: FakeGemini, store: LocalStore, args: argparse.Namespace) -> GeminiSetup:
    analyzer = clip_analyzer(
        client_for(fake),
        MODEL,
        rpm=per_window(args),
        concurrency=args.concurrency,
        window_seconds=args.window,
    )
    return GeminiSetup(analyzer, clip_cache(store), None)


def run_ours(responses, manifest, fake: FakeGemini, store: LocalStore, args) -> tuple[dict, pd.DataFrame]:
    before = len(fake.requests)
    started = time.monotonic()
    frame, report = analyze_responses(responses, manifest, read_url, gemini_setup(fake, store, args))
    seconds = time.monotonic() - started
    new = fake.requests[before:]
    accepted = [request.time for request in new if request.status != 429]
    result = {
        "clips": len(responses),
        "seconds": round(seconds, 2),
        "statuses": dict(report.by_status),
        "model_calls": report.model_calls,
        "cached": report.cached,
        "server_requests": len(new),
        "accepted": len(accepted),
        "rejected_429": sum(1 for request in new if request.status == 429),
        "checkpoints": report.checkpoints,
    }
    if accepted:
        result |= rate_facts(accepted, started, seconds, fake, args)
    return result, frame


def rate_facts(accepted: list[float], started: float, seconds: float, fake: FakeGemini, args) -> dict:
    limit, window = per_window(args), args.window
    per_minute = len(accepted) / seconds * 60
    # Request k can't start before request k-limit plus one window: every such gap is >= window when the
    # limit is kept, so window / mean gap is <= 1, and close to 1 when the budget is fully used.
    gaps = [later - earlier for earlier, later in zip(accepted, accepted[limit:], strict=False)]
    # The fastest any client within the limit could finish: request k waits floor(k / limit) windows, and
    # with `concurrency` calls of `latency` in flight the clips of the last window need their own time.
    windows = (len(accepted) - 1) // limit
    last = len(accepted) - windows * limit
    fastest = windows * window + -(-last // args.concurrency) * args.latency
    return {
        "before_first_request_s": round(accepted[0] - started, 2),
        "request_span_s": round(accepted[-1] - accepted[0], 2),
        "requests_per_minute": round(per_minute, 1),
        "average_share_of_r": round(per_minute / args.rpm, 3),
        "busiest_window": fake.max_in_window(window),
        "busiest_window_share": round(fake.max_in_window(window) / limit, 3),
        "sustained_share_of_r": round(window / statistics.mean(gaps), 3) if gaps else None,
        "min_gap_s": round(min(gaps), 3) if gaps else None,
        "fastest_possible_s": round(fastest, 1),
    }


def run_original(responses, manifest, fake: FakeGemini, delay: float, calls: int) -> dict:
    """The original approach: one call at a time, then a fixed sleep. The request is ours (same prompt,
    schema and config) so only the pacing differs; errors are counted, not retried, as it did."""
    client = client_for(fake)
    config = clip_config(MODEL)
    call_seconds, failures = [], 0
    started = time.monotonic()
    for response, row in list(zip(responses.to_dict("records"), manifest.to_dict("records"), strict=True))[
        :calls
    ]:
        contents = [
            types.Part.from_bytes(data=read_url(row["storage_path"]), mime_type="audio/wav"),
            f"Expected sentence: {response['original_text']}",
        ]
        call_started = time.monotonic()
        try:
            client.models.generate_content(model=MODEL, contents=contents, config=config)
        except errors.APIError:
            failures += 1
        call_seconds.append(time.monotonic() - call_started)
        time.sleep(delay)
    seconds = time.monotonic() - started
    return {
        "delay_s": round(delay, 4),
        "clips": calls,
        "seconds": round(seconds, 2),
        "mean_call_s": round(statistics.mean(call_seconds), 3),
        "seconds_per_clip": round(seconds / calls, 3),
        "requests_per_minute": round(calls / seconds * 60, 2),
        "failures": failures,
        "rejected_429": fake.rejected_429,
    }


# ------------------------------------------------------------------------------------------------ report


def machine_facts() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: metadata.version(name) for name in ("google-genai", "pandas", "pyarrow")},
        "load_average_before": [round(value, 2) for value in os.getloadavg()],
    }


def markdown(result: dict) -> str:
    machine, setup, ours, again = result["machine"], result["setup"], result["ours"], result["second_run"]
    rpm, clips = setup["rpm"], setup["clips"]
    eight, scaled = result["original_8s"], result["original_scaled"]

    def row(label: str, count: int, seconds: float, per_minute: float | None, calls: str, rejected) -> str:
        share = "-" if per_minute is None else f"{per_minute / rpm:.3f}"
        rate = "-" if per_minute is None else f"{per_minute:,.1f}"
        return f"| {label} | {count:,} | {seconds:,.1f} | {rate} | {share} | {calls} | {rejected} |"

    sustained = ours["sustained_share_of_r"]
    lines = [
        f"Machine: {machine['cpu_model']}, {machine['cores']} cores, Python {machine['python']}; "
        f"google-genai {machine['packages']['google-genai']}. {clips:,} distinct 0.5-1 s WAV clips; the "
        f"test suite's FakeGemini on 127.0.0.1 allowing R = {rpm} requests per minute "
        f"({setup['per_window']} per {setup['window_s']:g} s sliding window), {setup['latency_s']:g} s "
        f"added to every call. Mode: {setup['mode']}.",
        "",
        "| run | clips | seconds | requests/min | requests/min ÷ R | model calls | 429s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        row(
            f"ours: `analyze_responses`, rpm={rpm}, concurrency {setup['concurrency']}",
            ours["clips"],
            ours["seconds"],
            ours["requests_per_minute"],
            f"{ours['model_calls']:,}",
            ours["rejected_429"],
        ),
        row(
            f"original: sequential, {eight['delay_s']:g} s delay, measured",
            eight["clips"],
            eight["seconds"],
            eight["requests_per_minute"],
            str(eight["clips"]),
            eight["rejected_429"],
        ),
        row(
            f"original: {eight['delay_s']:g} s delay, **EXTRAPOLATED** to {clips:,} (not run)",
            clips,
            eight["seconds_per_clip"] * clips,
            eight["requests_per_minute"],
            f"{clips:,}",
            "-",
        ),
        row(
            f"original: sequential, delay scaled to the budget (60/R = {scaled['delay_s']:g} s), measured",
            scaled["clips"],
            scaled["seconds"],
            scaled["requests_per_minute"],
            str(scaled["clips"]),
            scaled["rejected_429"],
        ),
        row(
            f"original: scaled delay, **EXTRAPOLATED** to {clips:,} (not run)",
            clips,
            scaled["seconds_per_clip"] * clips,
            scaled["requests_per_minute"],
            f"{clips:,}",
            "-",
        ),
        row(
            "second materialization: fresh analyzer, same cache",
            again["clips"],
            again["seconds"],
            None,
            f"**{again['model_calls']}** (target 0)",
            again["rejected_429"],
        ),
        "",
        f"- Ours stays within the limit: busiest {setup['window_s']:g} s window "
        f"**{ours['busiest_window']} of {setup['per_window']}** ({ours['busiest_window_share']:.3f}; "
        f"never above 1), {ours['rejected_429']} rejections"
        + (
            f", smallest gap between a request and the one {setup['per_window']} before it "
            f"{ours['min_gap_s']} s (≥ {setup['window_s']:g} s)."
            if ours["min_gap_s"] is not None
            else "."
        ),
        f"- Sustained share of R (window / mean gap to the request R places earlier): "
        f"**{sustained if sustained is not None else 'n/a (no more clips than one window holds)'}** "
        f"(target ≥ {TARGET_SHARE}; the limiter's window is W × 1.01 + 0.05 s). Requests / elapsed minutes "
        "(the table's ÷ R column) can exceed 1 without breaking the limit: a sliding window admits R at "
        "once and R more a window later, so a run under two windows long averages above R.",
        f"- Fastest any client within the limit could finish these {clips:,} clips with "
        f"{setup['concurrency']} calls of {setup['latency_s']:g} s in flight: {ours['fastest_possible_s']:g} s "
        f"(request k waits ⌊k/R⌋ windows, then the last window's clips take their own time); ours took "
        f"{ours['seconds']:.1f} s, {ours['before_first_request_s']:.1f} s of it before the first request "
        "(reading and checking the clips, cache lookup).",
        f"- Ours vs the original for {clips:,} clips: **{result['speedup_vs_original_8s']:,.0f}x** faster than "
        f"its literal 8 s delay (extrapolated from {eight['clips']} calls; it reaches "
        f"{eight['requests_per_minute'] / 7.5:.2f} of its own 7.5 RPM design rate), "
        f"**{result['speedup_vs_original_scaled']:.1f}x** faster than the same loop with the delay scaled to "
        f"R (a sleep-paced loop also waits out every call's latency: mean call "
        f"{scaled['mean_call_s']:.3f} s + {scaled['delay_s']:g} s sleep).",
        f"- Second materialization: {again['cached']:,} of {again['clips']:,} clips from the cache, "
        f"{again['server_requests']} requests reached the server, rows identical to the first run: "
        f"{again['same_rows']}.",
    ]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rpm", type=int, default=600, help="R: the fake's requests per minute (default 600)"
    )
    parser.add_argument("--clips", type=int, help="clips for ours (default 1,000; 100 with --quick)")
    parser.add_argument("--concurrency", type=int, default=8, help="GEMINI_CONCURRENCY (default 8)")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds the fake adds to every call")
    parser.add_argument("--original-clips", type=int, help="clips for the scaled-delay loop (default 60)")
    parser.add_argument("--original-8s-calls", type=int, help="calls with the literal 8 s delay (default 5)")
    parser.add_argument("--quick", action="store_true", help="100 clips through a 6 s window; prints only")
    parser.add_argument("--output", type=Path, help="write <output>.json/.md (default results/analysis)")
    args = parser.parse_args()
    args.window = 6.0 if args.quick else 60.0
    args.clips = args.clips or (100 if args.quick else 1000)
    args.original_clips = args.original_clips or (10 if args.quick else 60)
    args.original_8s_calls = args.original_8s_calls or (2 if args.quick else 5)
    if args.output is None and not args.quick:
        args.output = RESULTS / "analysis"
    return args


def isolate_from_real_gemini() -> None:
    for name in GEMINI_ENV:
        os.environ.pop(name, None)
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"


def main() -> None:
    args = parse_args()
    isolate_from_real_gemini()
    machine = machine_facts()
    with tempfile.TemporaryDirectory(prefix="bench-analysis-") as tmp:
        responses, manifest = stored_clips(Path(tmp) / "clips", args.clips)
        store = LocalStore(Path(tmp) / "warehouse")
        with fake_server(args) as fake:
            ours, first = run_ours(responses, manifest, fake, store, args)
            print(
                f"ours: {ours['seconds']:.1f} s, {ours['requests_per_minute']:.0f} requests/min", flush=True
            )
            again, second = run_ours(responses, manifest, fake, store, args)
            again["same_rows"] = first.equals(second)
            print(f"second run: {again['seconds']:.1f} s, {again['model_calls']} model calls", flush=True)
        with fake_server(args) as fake:
            scaled = run_original(responses, manifest, fake, 60 / args.rpm, args.original_clips)
            print(f"original, scaled delay: {scaled['requests_per_minute']:.0f} requests/min", flush=True)
        with fake_server(args) as fake:
            eight = run_original(responses, manifest, fake, ORIGINAL_DELAY_S, args.original_8s_calls)
            print(f"original, 8 s delay: {eight['seconds_per_clip']:.2f} s per clip", flush=True)
    result = {
        "benchmark": "stage 5 Gemini analysis (analyze_responses + GeminiClient + ResultCache)",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "setup": {
            "mode": "quick" if args.quick else "full",
            "clips": args.clips,
            "rpm": args.rpm,
            "window_s": args.window,
            "per_window": per_window(args),
            "latency_s": args.latency,
            "concurrency": args.concurrency,
            "model": MODEL,
            "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        },
        "ours": ours,
        "second_run": again,
        "original_8s": eight,
        "original_scaled": scaled,
        # Both originals are extrapolated linearly: a sequential loop's time per clip doesn't change.
        "speedup_vs_original_8s": round(eight["seconds_per_clip"] * args.clips / ours["seconds"], 1),
        "speedup_vs_original_scaled": round(scaled["seconds_per_clip"] * args.clips / ours["seconds"], 2),
        "target_share": TARGET_SHARE,
    }
    table = markdown(result)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        args.output.with_suffix(".md").write_text(table + "\n")
        print(f"wrote {args.output.with_suffix('.json')} and .md")
    print()
    print(table)


if __name__ == "__main__":
    main()
