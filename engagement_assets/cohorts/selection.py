"""Which learners a cohort filter selects: a conjunction of conditions on their profiles (each left empty
matches everyone), or a pasted list of learner ids, or both."""

from __future__ import annotations

import re

import pandas as pd

from engagement_assets.cohorts.profiles import COHORT_ATTRIBUTES
from engagement_assets.storage.keys import key_of

# Conditions beyond "this attribute has this value", in the order a description names them.
RANGE_CONDITIONS = ("milestone_level_reached", "first_seen_from", "first_seen_until")


class CohortFilter:
    """Learners whose profile has each given value of COHORT_ATTRIBUTES, who reached a milestone level,
    whose first answer falls in a window of dates (inclusive), and (when pasted) whose id is listed."""

    def __init__(
        self,
        *,
        milestone_level_reached: str | None = None,
        first_seen_from: str | None = None,
        first_seen_until: str | None = None,
        learner_ids: str | None = None,
        **attributes: str | None,
    ):
        unknown = sorted(set(attributes) - set(COHORT_ATTRIBUTES))
        if unknown:
            raise ValueError(f"not profile attributes: {unknown}; choose from {list(COHORT_ATTRIBUTES)}")
        self.attributes = {name: value for name, value in attributes.items() if value}
        self.milestone_level_reached = milestone_level_reached
        self.first_seen_from, self.first_seen_until = first_seen_from, first_seen_until
        self.learner_ids = learner_ids  # pasted: separated by commas, spaces or new lines

    def describe(self) -> str:
        """The filter in one line (the backfill's tag and title)."""
        conditions = {**self.attributes, **{name: getattr(self, name) for name in RANGE_CONDITIONS}}
        parts = [f"{name}={value}" for name, value in conditions.items() if value]
        if self.learner_ids:
            parts.append(f"learner_ids=[{len(pasted_ids(self.learner_ids))} pasted]")
        return ", ".join(parts) or "all learners"


def pasted_ids(text: str) -> list[str]:
    return [token for token in re.split(r"[\s,;]+", text.strip()) if token]


def selected_learners(profiles: pd.DataFrame, cohort: CohortFilter) -> list[str]:
    """The `users` partition keys of the learners the filter selects, in key order."""
    chosen = pd.Series(True, index=profiles.index)
    for column, value in cohort.attributes.items():
        chosen &= profiles[column] == value
    if cohort.milestone_level_reached:
        reached = profiles["milestone_levels"].fillna("").str.split(",")
        chosen &= reached.map(lambda levels: cohort.milestone_level_reached in levels)
    if cohort.first_seen_from:
        chosen &= profiles["first_seen"] >= pd.Timestamp(cohort.first_seen_from)
    if cohort.first_seen_until:
        chosen &= profiles["first_seen"] < pd.Timestamp(cohort.first_seen_until) + pd.Timedelta(days=1)
    if cohort.learner_ids:
        chosen &= profiles["UserId"].isin(pasted_ids(cohort.learner_ids))
    return sorted(key_of(user) for user in profiles.loc[chosen, "UserId"])
