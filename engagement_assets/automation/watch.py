"""Which landed files are new since the last look: a high-water mark, not a list of every file seen.

The mark is the (modified time, key) of the last file handed out, so the cursor stays a few bytes however
many files land, a file rewritten later is seen again (its time moves past the mark), and a burst is
handed out a few files per tick, oldest first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from engagement_assets.storage.store import StoredFile


def newer_files(
    files: Iterable[StoredFile], cursor: str | None, limit: int
) -> tuple[list[StoredFile], str | None]:
    """Up to `limit` files past the mark in `cursor`, oldest first, and the cursor to store next."""
    mark = _mark(cursor)
    fresh = sorted((f for f in files if (f.modified, f.key) > mark), key=lambda f: (f.modified, f.key))[
        :limit
    ]
    if not fresh:
        return [], cursor
    last = fresh[-1]
    return fresh, json.dumps({"modified": last.modified, "key": last.key})


def _mark(cursor: str | None) -> tuple[float, str]:
    if not cursor:
        return (float("-inf"), "")
    saved = json.loads(cursor)
    return (float(saved["modified"]), str(saved["key"]))


def change_key(stored: StoredFile) -> str:
    """Names one version of a file: a run key that repeats only when nothing changed."""
    return f"{stored.key}@{stored.modified:.6f}:{stored.size}"
