"""Cohort comparison: intervals as scipy computes them, a planted difference found, and no number where
there is too little data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from engagement_assets.cohorts.compare import NOT_ENOUGH, OK, REST, compare, learner_measures, welch_interval


def learners(rng, cohort: str, n: int, accuracy: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "UserId": [f"{cohort}{i}" for i in range(n)],
            "level": cohort,
            "accuracy": rng.normal(accuracy, 10, n),
            "engagement": rng.normal(60, 10, n),
            "stopping_rate": rng.uniform(0, 0.3, n),
        }
    )


def test_welch_interval_is_scipys():
    rng = np.random.default_rng(0)
    a, b = pd.Series(rng.normal(5, 2, 40)), pd.Series(rng.normal(4, 3, 25))
    difference, low, high = welch_interval(a, b)
    expected = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert difference == pytest.approx(a.mean() - b.mean())
    assert (low, high) == pytest.approx((expected.low, expected.high))


def test_a_planted_difference_is_found_and_an_equal_measure_is_not():
    rng = np.random.default_rng(1)
    table = pd.concat([learners(rng, "m1", 200, 70), learners(rng, "m2", 200, 60)])
    result = compare(table, "level", min_learners=10, first="m1", second="m2").set_index("measure")
    accuracy, engagement = result.loc["accuracy"], result.loc["engagement"]
    assert accuracy["status"] == OK and accuracy["learners"] == accuracy["other_learners"] == 200
    assert accuracy["difference_ci_low"] > 5 and accuracy["difference_ci_high"] < 15
    assert engagement["difference_ci_low"] < 0 < engagement["difference_ci_high"]
    assert accuracy["ci_low"] < accuracy["mean"] < accuracy["ci_high"]


def test_each_cohort_against_all_others_by_default():
    rng = np.random.default_rng(2)
    table = pd.concat([learners(rng, c, 30, 65) for c in ("m1", "m2", "m3")])
    result = compare(table, "level", min_learners=10)
    assert set(result["cohort"]) == {"m1", "m2", "m3"} and set(result["compared_with"]) == {REST}
    assert (result["other_learners"] == 60).all() and len(result) == 3 * 3


def test_too_few_learners_say_so_instead_of_a_number():
    rng = np.random.default_rng(3)
    table = pd.concat([learners(rng, "m1", 50, 70), learners(rng, "m2", 4, 60)])
    result = compare(table, "level", min_learners=10, first="m1", second="m2")
    assert set(result["status"]) == {NOT_ENOUGH} and result["mean"].isna().all()


def test_learner_measures_weigh_each_learner_once():
    phases = pd.DataFrame(
        {"UserId": ["a", "a", "a", "b"], "avg_accuracy": [90, 90, 90, 30], "avg_Engagement": [1, 2, 3, 4]}
    )
    rows = pd.DataFrame(
        {"UserId": ["a", "a", "b"], "stopped_within_7d": pd.array([True, False, None], dtype="boolean")}
    )
    measures = learner_measures(phases, rows).set_index("UserId")
    assert measures.loc["a", "accuracy"] == 90 and measures.loc["b", "accuracy"] == 30
    assert measures.loc["a", "stopping_rate"] == 0.5 and np.isnan(measures.loc["b", "stopping_rate"])
