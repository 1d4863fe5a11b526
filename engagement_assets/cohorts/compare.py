"""Cohort comparison: how learners of one cohort differ from the others (or from one named cohort) in
accuracy, engagement and how often they stop practising, with 95% confidence intervals and sample sizes.

The unit is the learner: each learner contributes their mean over their phases (and their share of phases
followed by 7 days without practice), so a learner with many phases does not outweigh the others.
Intervals are Student's t for a mean and Welch's for a difference. Below `min_learners` on either side a
row says "not enough data" instead of a number that would mislead.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa

from engagement_assets.storage.columns import column

MEASURES = {
    "accuracy": "mean accuracy over the learner's phases, 0-100",
    "engagement": "mean engagement in the voice over the learner's phases, 0-100",
    "stopping_rate": "share of the learner's phases followed by 7 days without practice",
}
OK, NOT_ENOUGH = "ok", "not enough data"
REST = "(all others)"
COMPARISON_SCHEMA = pa.schema(
    [
        column("attribute", pa.string(), "the profile attribute the cohorts are defined by"),
        column("cohort", pa.string(), "the cohort's value of the attribute"),
        column("compared_with", pa.string(), "the other cohort, or (all others)"),
        column("measure", pa.string(), ", ".join(MEASURES)),
        column("learners", pa.int64(), "learners in the cohort with this measure"),
        column("other_learners", pa.int64(), "learners on the other side"),
        column("mean", pa.float64(), "the cohort's mean"),
        column("ci_low", pa.float64(), "95% interval of the cohort's mean"),
        column("ci_high", pa.float64(), ""),
        column("difference", pa.float64(), "cohort mean minus the other side's"),
        column("difference_ci_low", pa.float64(), "95% interval of the difference (Welch)"),
        column("difference_ci_high", pa.float64(), ""),
        column("status", pa.string(), "ok, or not enough data (fewer learners than the minimum on a side)"),
    ]
)
COMPARISON_COLUMNS = tuple(COMPARISON_SCHEMA.names)


def learner_measures(phases: pd.DataFrame, training_rows: pd.DataFrame | None) -> pd.DataFrame:
    """One row per learner: their mean accuracy and engagement, and their stopping rate where known."""
    measures = phases.groupby("UserId").agg(
        accuracy=("avg_accuracy", "mean"), engagement=("avg_Engagement", "mean")
    )
    if training_rows is not None and len(training_rows):
        labelled = training_rows[training_rows["stopped_within_7d"].notna()]
        rate = labelled.assign(stopped=labelled["stopped_within_7d"].astype(float)).groupby("UserId")[
            "stopped"
        ]
        measures["stopping_rate"] = rate.mean()
    else:
        measures["stopping_rate"] = np.nan
    return measures.reset_index()


def compare(
    learners: pd.DataFrame,
    attribute: str,
    min_learners: int,
    first: str | None = None,
    second: str | None = None,
) -> pd.DataFrame:
    """Each cohort of `attribute` against all other learners, or `first` against `second`."""
    grouped = learners.dropna(subset=[attribute])
    if first is not None and second is not None:
        pairs = [(first, grouped[grouped[attribute] == first], second, grouped[grouped[attribute] == second])]
    else:
        pairs = [
            (cohort, members, REST, grouped[grouped[attribute] != cohort])
            for cohort, members in grouped.groupby(attribute, sort=True)
        ]
    rows = [
        _row(attribute, name, members[measure], other, others[measure], measure, min_learners)
        for name, members, other, others in pairs
        for measure in MEASURES
    ]
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


def _t_quantile(probability: float, dof: float) -> float:
    # Imported here: the code location is imported by every run and step process, and scipy.stats alone
    # adds most of a second to each; only this asset's step needs it.
    from scipy import stats

    return float(stats.t.ppf(probability, dof))


def mean_interval(values: pd.Series) -> tuple[float, float, float]:
    values = values.dropna()
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = _t_quantile(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def welch_interval(a: pd.Series, b: pd.Series) -> tuple[float, float, float]:
    a, b = a.dropna(), b.dropna()
    difference = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return difference, difference, difference
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = _t_quantile(0.975, dof) * se
    return difference, difference - half, difference + half


def _row(attribute, name, values, other, other_values, measure, min_learners) -> dict:
    n, m = int(values.notna().sum()), int(other_values.notna().sum())
    row = {
        "attribute": attribute,
        "cohort": str(name),
        "compared_with": str(other),
        "measure": measure,
        "learners": n,
        "other_learners": m,
    }
    if n < min_learners or m < min_learners:
        return row | {"status": NOT_ENOUGH}
    mean, low, high = mean_interval(values)
    difference, diff_low, diff_high = welch_interval(values, other_values)
    return row | {
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        "difference": difference,
        "difference_ci_low": diff_low,
        "difference_ci_high": diff_high,
        "status": OK,
    }
