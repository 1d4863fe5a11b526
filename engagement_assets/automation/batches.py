"""Which ranged runs refresh a set of learners: few runs, never one per learner.

A run covers a contiguous range of the `users` partitions (Dagster's order: the order keys were added), so
the learners a drop touches are grouped into spans of that order. Learners first seen together (a school's
cohort, one drop) sit next to each other, so a day's drop over known learners is a few spans. A span may take
in a few learners the drop did not touch, to avoid splitting into many small runs: refreshing them again is
harmless (same inputs, same outputs), only a little extra work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def learner_spans(
    order: Sequence[str], affected: Iterable[str], max_span: int, max_gap: int
) -> list[tuple[str, str]]:
    """(first, last) keys of spans of `order` that together cover every affected key: runs of affected keys
    joined across at most `max_gap` untouched keys, each span at most `max_span` keys long."""
    wanted = set(affected)
    positions = [index for index, key in enumerate(order) if key in wanted]
    spans: list[tuple[int, int]] = []
    for position in positions:
        if spans:
            start, end = spans[-1]
            if position - end - 1 <= max_gap and position - start < max_span:
                spans[-1] = (start, position)
                continue
        spans.append((position, position))
    return [(order[start], order[end]) for start, end in spans]
