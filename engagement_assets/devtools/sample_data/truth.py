"""What stage 1 must keep, recorded as the generator plants it.

Per file: the (event_mid, event_ets_ms, user_id) of every response stage 1 keeps, once per file (stage 1
dedupes within a drop); per user: the count after deduplicating across all files. The per-file lists are
spilled to disk as they grow so that memory stays flat at any size.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO


class GroundTruth:
    def __init__(self, spill_folder: Path) -> None:
        self._spill_folder = spill_folder
        self._spills: dict[str, IO[str]] = {}
        self.kept_count: Counter[str] = Counter()
        self.kept_by_source: dict[str, Counter[str]] = {}
        self.per_user: Counter[str] = Counter()
        self.per_user_source: dict[str, str] = {}

    def keep(self, file: str, mid: str, ets: int, user_id: str, source: str, *, first_copy: bool) -> None:
        """Record one kept response in `file`; `first_copy` is False for a re-sent duplicate."""
        self._spill(file).write(json.dumps([mid, ets, user_id], ensure_ascii=False) + "\n")
        self.kept_count[file] += 1
        self.kept_by_source.setdefault(file, Counter())[source] += 1
        if first_copy:
            self.per_user[user_id] += 1
            self.per_user_source.setdefault(user_id, source)

    def kept_lines(self, file: str) -> Iterator[str]:
        """The spilled JSON triples of one file, in planting order."""
        handle = self._spills.get(file)
        if handle is None:
            return
        handle.flush()
        with open(handle.name, encoding="utf-8") as lines:
            for line in lines:
                yield line.rstrip("\n")

    def close(self) -> None:
        for handle in self._spills.values():
            handle.close()
            Path(handle.name).unlink(missing_ok=True)
        self._spills.clear()

    def _spill(self, file: str) -> IO[str]:
        handle = self._spills.get(file)
        if handle is None:
            self._spill_folder.mkdir(parents=True, exist_ok=True)
            path = self._spill_folder / f"kept-{len(self._spills):04d}.jsonl"
            handle = self._spills[file] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - open until close()
        return handle
