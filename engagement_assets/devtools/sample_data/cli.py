"""Command line: `engagement-sample-data --out ./data/landing --learners 8 --seed 7 …`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .generator import FORMATS, generate_landing
from .summary import SUMMARY_NAME, LandingSummary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="engagement-sample-data",
        description="Write a deterministic sample landing area (telemetry exports, sessions CSVs, audio) "
        f"and its ground truth ({SUMMARY_NAME}).",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("./data/landing"), help="landing root (default: %(default)s)"
    )
    parser.add_argument("--learners", type=int, default=8, help="number of learners (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="random seed; same seed and options, same bytes")
    parser.add_argument(
        "--target-mb",
        type=float,
        default=None,
        help="pad the telemetry with more sessions and other apps' events to about this many MB (10^6 bytes, "
        "uncompressed); audio grows along, so add --no-audio for large runs",
    )
    parser.add_argument(
        "--files", type=int, default=6, help="number of telemetry export files (default: %(default)s)"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="both", help="telemetry file format (default: both)"
    )
    parser.add_argument(
        "--gzip", action="store_true", help="gzip every telemetry file (default: only the last two)"
    )
    parser.add_argument(
        "--no-audio", action="store_true", help="do not write audio objects (keys stay in telemetry)"
    )
    parser.add_argument("--with-malformed", action="store_true", help="add a drop of damaged files")
    parser.add_argument(
        "--clean", action="store_true", help="first remove telemetry/, sessions/ and audio from --out"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.learners < 1 or args.files < 1:
        build_parser().error("--learners and --files must be at least 1")
    started = time.perf_counter()
    summary = generate_landing(
        args.out,
        learners=args.learners,
        seed=args.seed,
        target_mb=args.target_mb,
        audio=not args.no_audio,
        malformed=args.with_malformed,
        files=args.files,
        formats=args.format,
        gzip_all=args.gzip,
        clean=args.clean,
    )
    print(report(summary, time.perf_counter() - started))
    return 0


def report(summary: LandingSummary, seconds: float) -> str:
    megabytes = summary.telemetry_bytes_uncompressed / 1e6
    lines = [f"landing area: {summary.root}"]
    for file in summary.files:
        damage = f", {file.malformed} malformed" if file.malformed else ""
        lines.append(
            f"  {file.path}: {file.records} rows, {file.kept_count} responses to keep{damage}, "
            f"{file.bytes_on_disk / 1e6:.1f} MB on disk"
        )
    sessions = summary.sessions
    audio = summary.audio
    if audio["written"]:
        audio_line = (
            f"  audio: {audio['objects']} objects, {audio['bytes'] / 1e6:.1f} MB, "
            f"{len(audio['missing'])} keys whose upload failed"
        )
    else:
        audio_line = f"  audio: not written ({audio['keys_in_telemetry']} keys in telemetry)"
    lines += [
        f"  sessions/: {len(sessions['files'])} CSV files, {sessions['rows']} lesson rows",
        audio_line,
        f"  learners: {len(summary.expected_per_user)} user ids, {summary.expected_total} responses after dedupe",
        f"telemetry: {megabytes:.1f} MB uncompressed, {summary.telemetry_bytes_on_disk / 1e6:.1f} MB on disk, "
        f"{seconds:.1f} s ({megabytes / seconds if seconds else 0:.1f} MB/s)",
        f"truth: {summary.root / SUMMARY_NAME}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
