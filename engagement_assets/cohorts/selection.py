"""Which learners a cohort filter selects: a conjunction of conditions on their profiles (each left empty
matches everyone), or a pasted list of learner ids, or both."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from engagement_assets.storage.keys import key_of


@dataclass(frozen=True)
class CohortFilter:
    milestone_level_reached: str | None = None
    latest_milestone_level: str | None = None
    start_week: str | None = None
    id_source: str | None = None
    first_seen_from: str | None = None  # a date, inclusive
    first_seen_until: str | None = None  # a date, inclusive
    learner_ids: str | None = None  # pasted: separated by commas, spaces or new lines

    def describe(self) -> str:
        """The filter in one line (the backfill's tag and title)."""
        parts = [f"{name}={value}" for name, value in vars(self).items() if value and name != "learner_ids"]
        if self.learner_ids:
            parts.append(f"learner_ids=[{len(pasted_ids(self.learner_ids))} pasted]")
        return ", ".join(parts) or "all learners"


def pasted_ids(text: str) -> list[str]:
    return [token for token in re.split(r"[\s,;]+", text.strip()) if token]


def selected_learners(profiles: pd.DataFrame, cohort: CohortFilter) -> list[str]:
    """The `users` partition keys of the learners the filter selects, in key order."""
    chosen = pd.Series(True, index=profiles.index)
    for column in ("latest_milestone_level", "start_week", "id_source"):
        value = getattr(cohort, column)
        if value:
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
