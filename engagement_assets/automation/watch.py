"""Which landed files are new since the last look: a high-water mark, not a list of every file seen.

The mark is the newest modification time handed out, so the cursor stays small however many files land,
a file rewritten later is seen again (its time moves past the mark), and a burst is handed out a few files
per tick, oldest first. Object stores round times to the second and date a multipart upload by when it
started, so files up to OVERLAP_SECONDS behind the mark are looked at again, and the versions already
handed out in that window are remembered in the cursor so none is handed out twice. A file moved in with
a modification time older than that window (e.g. `cp -p`, `rsync -t`) is not seen: touch it, or add its
partition from the UI.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from engagement_assets.storage.store import StoredFile

OVERLAP_SECONDS = 300.0


def newer_files(
    files: Iterable[StoredFile], cursor: str | None, limit: int
) -> tuple[list[StoredFile], str | None]:
    """Up to `limit` files not handed out before, oldest first, and the cursor to store next."""
    mark, recent = _state(cursor)
    candidates = (f for f in files if f.modified >= mark - OVERLAP_SECONDS and f.version not in recent)
    fresh = sorted(candidates, key=lambda f: (f.modified, f.key))[:limit]
    if not fresh:
        return [], cursor
    mark = max(mark, fresh[-1].modified)
    recent.update({f.version: f.modified for f in fresh})
    window = {version: modified for version, modified in recent.items() if modified >= mark - OVERLAP_SECONDS}
    return fresh, json.dumps({"mark": mark, "recent": window}, sort_keys=True)


def looks_back_to(cursor: str | None) -> float | None:
    """The oldest modification time `newer_files` can still hand out with this cursor (None: any), so a
    listing can leave older files out."""
    mark, _ = _state(cursor)
    return None if mark == float("-inf") else mark - OVERLAP_SECONDS


def _state(cursor: str | None) -> tuple[float, dict[str, float]]:
    if not cursor:
        return float("-inf"), {}
    saved = json.loads(cursor)
    return float(saved["mark"]), dict(saved.get("recent", {}))
