"""Grouping the learners a drop touches into few ranged runs."""

from __future__ import annotations

from engagement_assets.automation.batches import RefreshState, keys_in_spans, learner_spans

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


def test_busy_learners_are_left_out_and_never_bridged_across():
    affected = ["u001", "u002", "u004", "u005"]
    spans = learner_spans(ORDER, affected, max_span=100, max_gap=5, busy={"u003"})
    assert spans == [("u001", "u002"), ("u004", "u005")]  # u003 is busy: no span covers it
    assert learner_spans(ORDER, affected, max_span=100, max_gap=5, busy={"u002"}) == [
        ("u001", "u001"),
        ("u004", "u005"),
    ]


def test_the_keys_a_set_of_ranges_covers():
    assert keys_in_spans(ORDER, [("u002", "u004"), ("u010", "u010")]) == {"u002", "u003", "u004", "u010"}
    assert keys_in_spans(ORDER, [("u002", "gone")]) == set()


def test_the_refresh_cursor_round_trips_and_reads_the_cursors_stored_before_it():
    state = RefreshState(seen="42", waiting=["u001"], round=3)
    assert RefreshState.parse(state.dump()) == state
    assert RefreshState.parse(None) == RefreshState()
    event_cursor = "eyJzdG9yYWdlX2lkIjogMTJ9"  # an event-log cursor, as the learners sensor stored it
    assert RefreshState.parse(event_cursor) == RefreshState(seen=event_cursor)
    mark = '{"mark": 10.0, "recent": {}}'  # a file mark, as the sessions sensor stored it
    assert RefreshState.parse(mark) == RefreshState(seen=mark)
