"""Cohort wiring: every learner's profile, and the cohort comparison built on it, refreshed by automation
with the phase-level engagement table."""

import dagster as dg
import pandas as pd
from pydantic import Field

from engagement_assets.cohorts.compare import COMPARISON_SCHEMA, NOT_ENOUGH, compare, learner_measures
from engagement_assets.cohorts.profiles import COHORT_ATTRIBUTES, PROFILE_SCHEMA
from engagement_assets.cohorts.profiles import learner_profiles as profiles_of
from engagement_assets.ingestion.assets import ATTRIBUTES
from engagement_assets.ingestion.events import LEARNER_ATTRIBUTES_SCHEMA, RESPONSE_SCHEMA
from engagement_assets.matching.matching import MERGED_SCHEMA
from engagement_assets.platform.metadata import counts_table, preview, table_metadata
from engagement_assets.platform.resources import StoreResource

GROUP = "cohorts"
TABLE = dg.AssetKey("phase_level_engagement")
# Read whole, whatever their partitions: every learner's answers and every drop's learner attributes.
PROFILE_SOURCES = {
    "responses": (dg.AssetKey("user_responses"), RESPONSE_SCHEMA),
    "merged": (dg.AssetKey("merged_responses"), MERGED_SCHEMA),
    "attributes": (ATTRIBUTES, LEARNER_ATTRIBUTES_SCHEMA),
}


@dg.asset(
    deps=[
        TABLE,
        *(
            dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping())
            for key, _ in PROFILE_SOURCES.values()
        ),
    ],
    group_name=GROUP,
    kinds={"duckdb", "parquet"},
    metadata=table_metadata(PROFILE_SCHEMA),
    # With the all-learner table, not on every learner's file: one rebuild per refresh of the table.
    automation_condition=dg.AutomationCondition.eager().allow(dg.AssetSelection.assets(TABLE)),
)
def learner_profiles(warehouse: StoreResource) -> dg.MaterializeResult[pd.DataFrame]:
    """One row per learner: first and last seen, the week they started, answers, sessions and active days,
    the milestone levels they reached and their latest, which build family identified them (id source), how
    many of their answers matched a lesson row, and what the telemetry says of them: language, school, UDISE
    code, class, app build, and whether their device is shared. Cohorts are filters on these attributes."""
    sources = {name: (key.path[-1], schema) for name, (key, schema) in PROFILE_SOURCES.items()}
    profiles = profiles_of(warehouse.store(), sources)
    return dg.MaterializeResult(
        value=profiles,
        metadata={
            "learners": len(profiles),
            **{
                f"by_{attribute}": counts_table(
                    profiles[attribute].fillna("unknown").value_counts().to_dict(), attribute
                )
                for attribute in COHORT_ATTRIBUTES
            },
        },
    )


class CohortComparisonConfig(dg.Config):
    attribute: str = Field(
        default="latest_milestone_level",
        description=f"the profile attribute: one of {', '.join(COHORT_ATTRIBUTES)}",
    )
    first: str | None = Field(
        default=None, description="a cohort to compare with `second` (else: each vs the rest)"
    )
    second: str | None = Field(default=None, description="the cohort `first` is compared with")
    min_learners: int = Field(
        default=10, ge=2, description="below this many learners on a side: not enough data"
    )


@dg.asset(
    group_name=GROUP,
    kinds={"parquet"},
    metadata=table_metadata(COMPARISON_SCHEMA),
    automation_condition=dg.AutomationCondition.eager(),
)
def cohort_comparison(
    config: CohortComparisonConfig,
    learner_profiles: pd.DataFrame,
    phase_level_engagement: pd.DataFrame,
    engagement_training_set: pd.DataFrame,
) -> dg.MaterializeResult[pd.DataFrame]:
    """How the cohorts of one profile attribute differ (each against all other learners, or two named
    cohorts against each other) in mean accuracy, engagement and 7-day stopping rate, per learner, with 95%
    confidence intervals and the number of learners on each side; "not enough data" below the minimum."""
    if config.attribute not in COHORT_ATTRIBUTES:
        raise dg.Failure(
            description=f"attribute {config.attribute!r} is not one of {', '.join(COHORT_ATTRIBUTES)}"
        )
    measures = learner_measures(phase_level_engagement, engagement_training_set)
    learners = learner_profiles.merge(measures, on="UserId", how="inner")
    result = compare(learners, config.attribute, config.min_learners, config.first, config.second)
    return dg.MaterializeResult(
        value=result,
        metadata={
            "attribute": config.attribute,
            "learners": len(learners),
            "comparisons": len(result),
            "not_enough_data": int((result["status"] == NOT_ENOUGH).sum()),
            "differences": preview(
                result[
                    [
                        "cohort",
                        "compared_with",
                        "measure",
                        "learners",
                        "difference",
                        "difference_ci_low",
                        "difference_ci_high",
                        "status",
                    ]
                ].round(2),
                rows=30,
            ),
        },
    )


COHORT_ASSETS = [learner_profiles, cohort_comparison]
