"""Grouping the learners a drop touches into few ranged runs."""

from __future__ import annotations

from engagement_assets.automation.batches import learner_spans

ORDER = [f"u{i:03d}" for i in range(20)]


def test_contiguous_learners_are_one_span():
    assert learner_spans(ORDER, ORDER[3:9], max_span=100, max_gap=0) == [("u003", "u008")]


def test_small_gaps_are_bridged_and_large_ones_split():
    affected = ["u001", "u002", "u004", "u010", "u011"]
    assert learner_spans(ORDER, affected, max_span=100, max_gap=1) == [("u001", "u004"), ("u010", "u011")]
    assert learner_spans(ORDER, affected, max_span=100, max_gap=0) == [
        ("u001", "u002"),
        ("u004", "u004"),
        ("u010", "u011"),
    ]


def test_no_span_is_longer_than_a_run_may_be():
    spans = learner_spans(ORDER, ORDER, max_span=7, max_gap=5)
    assert spans == [("u000", "u006"), ("u007", "u013"), ("u014", "u019")]


def test_every_affected_learner_is_covered_and_unknown_keys_are_ignored():
    affected = {"u000", "u005", "u019", "not-registered"}
    spans = learner_spans(ORDER, affected, max_span=4, max_gap=2)
    covered = {key for first, last in spans for key in ORDER[ORDER.index(first) : ORDER.index(last) + 1]}
    assert affected - {"not-registered"} <= covered
    assert learner_spans(ORDER, [], max_span=4, max_gap=2) == []
