"""`_generator_summary.json` and its in-memory form, `LandingSummary`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

SUMMARY_NAME = "_generator_summary.json"


@dataclass(frozen=True)
class TelemetryFileSummary:
    path: str  # relative to the landing root, e.g. "telemetry/all_telemetry_part1.json"
    format: str  # "json" (an array) or "jsonl"
    gzip: bool
    layout: str | None  # how the array is indented; None for JSONL
    records: int  # top-level rows that parse
    malformed: int  # damaged records planted (bad line, invalid UTF-8, truncated tail, corrupt stream)
    kept_count: int  # responses stage 1 must keep from this file alone (deduplicated within the file)
    kept_by_source: dict[str, int]
    bytes_uncompressed: int
    bytes_on_disk: int
    note: str = ""


@dataclass(frozen=True)
class LandingSummary:
    root: Path
    arguments: dict[str, Any]
    files: tuple[TelemetryFileSummary, ...]
    expected_per_user: dict[str, int]  # user_id -> responses after deduplicating across all files
    sessions: dict[str, Any]
    audio: dict[str, Any]
    learners: tuple[dict[str, Any], ...] = field(default=())

    @property
    def telemetry_bytes_uncompressed(self) -> int:
        return sum(f.bytes_uncompressed for f in self.files)

    @property
    def telemetry_bytes_on_disk(self) -> int:
        return sum(f.bytes_on_disk for f in self.files)

    @property
    def expected_total(self) -> int:
        return sum(self.expected_per_user.values())

    def file(self, path: str) -> TelemetryFileSummary:
        """A file's summary by path relative to the root (`telemetry/x.jsonl`) or by bare name."""
        for summary in self.files:
            if summary.path == path or summary.path == f"telemetry/{path}":
                return summary
        raise KeyError(path)

    def kept(self, path: str) -> list[tuple[str, int, str]]:
        """The (event_mid, event_ets_ms, user_id) stage 1 must keep from one file (deduplicated within it)."""
        return self._kept_lists[self.file(path).path]

    @cached_property
    def _kept_lists(self) -> dict[str, list[tuple[str, int, str]]]:
        # Read from the summary file on first use: at scale the lists are too large to carry around.
        document = json.loads((self.root / SUMMARY_NAME).read_text(encoding="utf-8"))
        return {
            entry["path"]: [(mid, ets, user) for mid, ets, user in entry["kept"]]
            for entry in document["telemetry"]["files"]
        }

    @classmethod
    def load(cls, root: Path | str) -> LandingSummary:
        root = Path(root)
        document = json.loads((root / SUMMARY_NAME).read_text(encoding="utf-8"))
        files = tuple(
            TelemetryFileSummary(**{k: v for k, v in entry.items() if k != "kept"})
            for entry in document["telemetry"]["files"]
        )
        return cls(
            root=root,
            arguments=document["arguments"],
            files=files,
            expected_per_user=document["expected_per_user"],
            sessions=document["sessions"],
            audio=document["audio"],
            learners=tuple(document["learners"]),
        )


def write_summary(summary: LandingSummary, kept_lines: dict[str, Iterable[str]]) -> Path:
    """Write the summary, streaming each file's kept list from `kept_lines` (JSON triples, one per line)."""
    placeholders = {f.path: f"@@kept:{index}@@" for index, f in enumerate(summary.files)}
    document = {
        "generator": "engagement_assets.devtools.sample_data",
        "arguments": summary.arguments,
        "telemetry": {
            "bytes_uncompressed": summary.telemetry_bytes_uncompressed,
            "bytes_on_disk": summary.telemetry_bytes_on_disk,
            "records": sum(f.records for f in summary.files),
            "malformed": sum(f.malformed for f in summary.files),
            "kept_per_file_total": sum(f.kept_count for f in summary.files),
            "files": [{**asdict(f), "kept": placeholders[f.path]} for f in summary.files],
        },
        "expected_total": summary.expected_total,
        "expected_per_user": summary.expected_per_user,
        "sessions": summary.sessions,
        "audio": summary.audio,
        "learners": list(summary.learners),
    }
    text = json.dumps(document, ensure_ascii=False, indent=2)
    path = summary.root / SUMMARY_NAME
    work = path.with_name(path.name + ".part")
    with open(work, "w", encoding="utf-8") as out:
        for f in summary.files:
            before, text = text.split(json.dumps(placeholders[f.path]), 1)
            out.write(before)
            _write_list(out, kept_lines.get(f.path, ()))
        out.write(text + "\n")
    work.replace(path)
    return path


def _write_list(out, lines: Iterable[str]) -> None:
    """A JSON array with one triple per line, indented to sit inside a file entry."""
    out.write("[")
    separator = "\n          "
    for line in lines:
        out.write(separator + line)
        separator = ",\n          "
    out.write("]" if separator == "\n          " else "\n        ]")
