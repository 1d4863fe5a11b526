"""Where learners struggle, in numbers: accuracy and engagement per practice phase, with how many phases
each mean rests on and its 95% interval (the dashboard draws them; the asset pages show them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engagement_assets.features.phases import PHASE_ORDER

# A normal-approximation 95% interval of a mean, as the dashboard's own charts draw it.
Z_95 = 1.96


def by_phase(features: pd.DataFrame) -> pd.DataFrame:
    """Per phase, in practice order: phases (n), mean accuracy and engagement with the half-width of their
    95% intervals (empty below two phases), and mean EQ-accuracy."""
    grouped = features.groupby("Phase")
    summary = grouped.agg(
        phases=("Phase", "size"),
        accuracy=("avg_accuracy", "mean"),
        engagement=("avg_Engagement", "mean"),
        eq_accuracy=("EQ_Accuracy_Score", "mean"),
    )
    for measure, column in (("accuracy", "avg_accuracy"), ("engagement", "avg_Engagement")):
        counted = grouped[column].count()
        summary[f"{measure}_ci"] = (Z_95 * grouped[column].std(ddof=1) / np.sqrt(counted)).where(counted >= 2)
    ordered = summary.loc[sorted(summary.index, key=PHASE_ORDER.get)]
    return ordered[["phases", "accuracy", "accuracy_ci", "engagement", "engagement_ci", "eq_accuracy"]]
