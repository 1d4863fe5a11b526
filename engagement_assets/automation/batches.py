"""Which ranged runs refresh a set of learners: few runs, never one per learner, never a learner twice.

A run covers a contiguous range of the `users` partitions (Dagster's order: the order keys were added), so
the learners a drop touches are grouped into spans of that order. Learners first seen together (a school's
cohort, one drop) sit next to each other, so a day's drop over known learners is a few spans. A span may take
in a few learners the drop did not touch, to avoid splitting into many small runs: refreshing them again is
harmless (same inputs, same outputs), only a little extra work.

A learner whose refresh is still queued or running waits: a second run over the same learner would race
the first one's writes and repeat its work, so the learner is carried over and refreshed once the first run
is done, with whatever landed in between.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field


def learner_spans(
    order: Sequence[str],
    affected: Iterable[str],
    max_span: int,
    max_gap: int,
    busy: Collection[str] = (),
) -> list[tuple[str, str]]:
    """(first, last) keys of spans of `order` that together cover every affected key that is not `busy`:
    runs of affected keys joined across at most `max_gap` untouched keys (never across a busy one), each
    span at most `max_span` keys long."""
    wanted, blocked = set(affected), set(busy)
    positions, busy_positions = [], []
    for index, key in enumerate(order):  # one pass: the order holds every learner ever registered
        if key in blocked:
            busy_positions.append(index)
        elif key in wanted:
            positions.append(index)
    spans: list[tuple[int, int]] = []
    for position in positions:
        if spans:
            start, end = spans[-1]
            bridgeable = position - end - 1 <= max_gap and not _any_between(busy_positions, end, position)
            if bridgeable and position - start < max_span:
                spans[-1] = (start, position)
                continue
        spans.append((position, position))
    return [(order[start], order[end]) for start, end in spans]


def _any_between(sorted_positions: list[int], low: int, high: int) -> bool:
    """Whether a position lies strictly between low and high."""
    index = bisect.bisect_right(sorted_positions, low)
    return index < len(sorted_positions) and sorted_positions[index] < high


def keys_in_spans(order: Sequence[str], spans: Iterable[tuple[str, str]]) -> set[str]:
    """Every key a set of (first, last) ranges of `order` covers; ranges naming unknown keys cover none."""
    spans = list(spans)
    if not spans:
        return set()
    position = {key: index for index, key in enumerate(order)}
    covered: set[str] = set()
    for first, last in spans:
        if first in position and last in position:
            covered.update(order[position[first] : position[last] + 1])
    return covered


@dataclass
class RefreshState:
    """A refresh sensor's cursor: how far it has read (`seen`, the sensor's own mark), the learners waiting
    for their previous run to finish, and a count of ticks that launched runs (for unique run keys)."""

    seen: str | None = None
    waiting: list[str] = field(default_factory=list)
    round: int = 0

    @classmethod
    def parse(cls, cursor: str | None) -> RefreshState:
        if not cursor:
            return cls()
        try:
            saved = json.loads(cursor)
        except ValueError:
            saved = None
        if not isinstance(saved, dict) or "round" not in saved:
            # A cursor stored before refreshes waited for busy learners: it is the mark alone.
            return cls(seen=cursor)
        return cls(saved["seen"], list(saved["waiting"]), int(saved["round"]))

    def dump(self) -> str:
        return json.dumps({"seen": self.seen, "waiting": self.waiting, "round": self.round}, sort_keys=True)
