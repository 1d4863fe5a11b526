"""Telemetry export files, written as streams: JSON arrays or JSONL, optionally gzip-compressed.

Each file is written under a temporary name and moved into `telemetry/` only when complete, so a sensor
watching the landing area never sees half a file.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .jsonfmt import ArrayLayout, compact

_FLUSH_CHARS = 1 << 20
GZIP_LEVEL = 6  # gzip's default, as `mongoexport | gzip` produces


@dataclass(frozen=True)
class FileSpec:
    name: str  # relative to telemetry/
    layout: ArrayLayout | None  # None: JSONL
    compressed: bool

    @property
    def format(self) -> str:
        return "jsonl" if self.layout is None else "json"


class TelemetryFile:
    """Appends rows (or raw text, for planted damage) and counts what went in."""

    def __init__(self, spec: FileSpec, final_path: Path, work_path: Path) -> None:
        self.spec = spec
        self.final_path = final_path
        self.records = 0
        self.malformed = 0
        self.bytes_uncompressed = 0
        self.bytes_on_disk = 0
        self.closed = False
        self._work_path = work_path
        self._raw = open(work_path, "wb")  # noqa: SIM115 - stays open across add() calls until close()
        self._sink: BinaryIO = self._raw
        if spec.compressed:
            # No file name and mtime 0 in the header keep the bytes reproducible.
            self._sink = gzip.GzipFile(
                filename="", mode="wb", fileobj=self._raw, compresslevel=GZIP_LEVEL, mtime=0
            )
        self._parts: list[str] = []
        self._pending = 0
        if spec.layout is not None:
            self._put(spec.layout.opening)

    def add(self, row: dict[str, Any]) -> None:
        layout = self.spec.layout
        if layout is None:
            self._put(compact(row) + "\n")
        else:
            self._put((layout.separator if self.records else "") + layout.document(row))
        self.records += 1

    def add_blank_line(self) -> None:
        if self.spec.layout is None:
            self._put("\n")

    def add_raw(self, data: str | bytes) -> None:
        """Text or bytes as is (damage planted on purpose); counted as bytes, not as a record."""
        self._flush()
        payload = data.encode() if isinstance(data, str) else data
        self._sink.write(payload)
        self.bytes_uncompressed += len(payload)

    def close(self, *, closing: bool = True) -> None:
        if self.spec.layout is not None and closing:
            self._put(self.spec.layout.closing)
        self._flush()
        if self._sink is not self._raw:
            self._sink.close()
        self._raw.close()
        os.replace(self._work_path, self.final_path)
        self.bytes_on_disk = self.final_path.stat().st_size
        self.closed = True

    def abort(self) -> None:
        """Drop a file a failed run was writing; nothing half-written reaches telemetry/."""
        if self.closed:
            return
        if self._sink is not self._raw:
            self._sink.close()
        self._raw.close()
        self._work_path.unlink(missing_ok=True)
        self.closed = True

    def _put(self, text: str) -> None:
        self._parts.append(text)
        self._pending += len(text)
        if self._pending >= _FLUSH_CHARS:
            self._flush()

    def _flush(self) -> None:
        if not self._parts:
            return
        payload = "".join(self._parts).encode()
        self._sink.write(payload)
        self.bytes_uncompressed += len(payload)
        self._parts.clear()
        self._pending = 0

    def written_estimate(self) -> int:
        """Uncompressed bytes so far, counting unflushed text by characters (close enough to steer size)."""
        return self.bytes_uncompressed + self._pending
