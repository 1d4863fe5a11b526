"""Cohort filters on learner profiles: each condition, their conjunction, and a pasted list of ids."""

from __future__ import annotations

import pandas as pd
import pytest

from engagement_assets import learner_key
from engagement_assets.cohorts.selection import CohortFilter, pasted_ids, selected_learners

PROFILES = pd.DataFrame(
    {
        "UserId": ["1000000001", "1000000002", "1000000003", "odd/id"],
        "milestone_levels": ["m1,m2", "m1", "m2,m3", None],
        "latest_milestone_level": ["m2", "m1", "m3", None],
        "start_week": ["2025-W01", "2025-W01", "2025-W02", "2025-W02"],
        "id_source": ["virtualId", "buddy", "virtualId", "uid"],
        "udise_code": ["33260101", None, "33260101", "33269999"],
        "device": ["shared", "own", "own", None],
        "first_seen": pd.to_datetime(
            ["2025-01-01 10:00", "2025-01-03 00:00", "2025-01-08 23:59", "2025-01-09 00:00"]
        ),
    }
)


def test_each_condition_and_their_conjunction():
    assert selected_learners(PROFILES, CohortFilter(milestone_level_reached="m2")) == [
        "1000000001",
        "1000000003",
    ]
    assert selected_learners(PROFILES, CohortFilter(latest_milestone_level="m1")) == ["1000000002"]
    both = CohortFilter(milestone_level_reached="m2", start_week="2025-W02")
    assert selected_learners(PROFILES, both) == ["1000000003"]
    window = CohortFilter(first_seen_from="2025-01-03", first_seen_until="2025-01-08")
    assert selected_learners(PROFILES, window) == ["1000000002", "1000000003"]
    assert len(selected_learners(PROFILES, CohortFilter())) == 4
    school_on_own_device = CohortFilter(udise_code="33260101", device="own")
    assert selected_learners(PROFILES, school_on_own_device) == ["1000000003"]


def test_an_attribute_profiles_do_not_have_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="not profile attributes: \\['schol'\\]"):
        CohortFilter(schol="x")


def test_a_pasted_list_finds_its_learners_as_partition_keys():
    pasted = "1000000002,\n  odd/id ; 9999999999"
    assert pasted_ids(pasted) == ["1000000002", "odd/id", "9999999999"]
    chosen = selected_learners(PROFILES, CohortFilter(learner_ids=pasted))
    assert chosen == sorted([learner_key("1000000002"), learner_key("odd/id")])


def test_the_description_names_every_condition():
    cohort = CohortFilter(milestone_level_reached="m2", learner_ids="a b c", school_name="Govt School")
    assert cohort.describe() == "school_name=Govt School, milestone_level_reached=m2, learner_ids=[3 pasted]"
    assert CohortFilter().describe() == "all learners"
