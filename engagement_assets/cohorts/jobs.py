"""Cohort backfill in one action: a job whose typed launchpad config is a cohort filter; its run selects
the learners from their profiles and requests one backfill of exactly them for the chosen per-learner
assets, which the Backfills page shows with the cohort in its tags."""

import time

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.utils import make_new_backfill_id
from pydantic import Field, create_model

from engagement_assets.automation.sensors import DROP_REFRESH
from engagement_assets.cohorts.assets import learner_profiles
from engagement_assets.cohorts.profiles import COHORT_ATTRIBUTES, PROFILE_SCHEMA
from engagement_assets.cohorts.selection import RANGE_CONDITIONS, CohortFilter, selected_learners
from engagement_assets.engagement_pipeline import ASSETS
from engagement_assets.platform.partitions import users
from engagement_assets.platform.resources import StoreResource
from engagement_assets.storage import layout
from engagement_assets.storage.columns import meaning_of
from engagement_assets.storage.parquet import read_parquet

COHORT_TAG = "engagement/cohort"
# Dagster keeps tag values short; the title carries the same text.
TAG_LENGTH = 200
PER_LEARNER_ASSETS = [asset.key.to_user_string() for asset in DROP_REFRESH]
ENGAGEMENT_GRAPH = AssetGraph.from_assets(
    [asset for asset in ASSETS if isinstance(asset, dg.AssetsDefinition)]
)


class _CohortBackfillBase(dg.Config):
    milestone_level_reached: str | None = Field(default=None, description="e.g. m2: learners who reached it")
    first_seen_from: str | None = Field(
        default=None, description="first answer on or after this date (YYYY-MM-DD)"
    )
    first_seen_until: str | None = Field(default=None, description="first answer on or before this date")
    learner_ids: str | None = Field(default=None, description="learner ids, pasted: commas, spaces or lines")
    assets: list[str] = Field(
        default=PER_LEARNER_ASSETS, description="the per-learner assets to backfill (default: every stage)"
    )

    def cohort(self) -> CohortFilter:
        conditions = {name: getattr(self, name) for name in (*COHORT_ATTRIBUTES, *RANGE_CONDITIONS)}
        return CohortFilter(learner_ids=self.learner_ids, **conditions)


# One launchpad field per profile attribute, described as the profile's column is.
CohortBackfillConfig = create_model(
    "CohortBackfillConfig",
    __base__=_CohortBackfillBase,
    **{
        name: (str | None, Field(default=None, description=meaning_of(PROFILE_SCHEMA.field(name))))
        for name in COHORT_ATTRIBUTES
    },
)


@dg.op
def request_cohort_backfill(
    context: dg.OpExecutionContext, config: CohortBackfillConfig, warehouse: StoreResource
) -> None:
    """Selects the cohort's learners from `learner_profiles` and requests one backfill of them."""
    unknown = sorted(set(config.assets) - set(PER_LEARNER_ASSETS))
    if unknown:
        raise dg.Failure(description=f"not per-learner assets: {unknown}; choose from {PER_LEARNER_ASSETS}")
    store = warehouse.store()
    profiles_key = layout.table_file(learner_profiles.key.path[-1])
    profiles = read_parquet(store, [profiles_key], schema=PROFILE_SCHEMA).to_pandas()
    cohort = config.cohort()
    described = cohort.describe()
    registered = set(context.instance.get_dynamic_partitions(users.name))
    learners = [key for key in selected_learners(profiles, cohort) if key in registered]
    if not learners:
        raise dg.Failure(description=f"no registered learner matches the cohort ({described})")
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        # Only the assets' partitions are read from it; the daemon runs the backfill on the deployment's graph.
        asset_graph=ENGAGEMENT_GRAPH,
        partition_names=learners,
        asset_selection=[dg.AssetKey.from_user_string(name) for name in config.assets],
        backfill_timestamp=time.time(),
        tags={COHORT_TAG: described[:TAG_LENGTH], "engagement/cohort_learners": str(len(learners))},
        dynamic_partitions_store=context.instance,
        all_partitions=False,
        title=f"cohort: {described}"[:TAG_LENGTH],
        description=f"{len(learners)} learner(s) selected from learner_profiles by {described}",
        run_config=None,
    )
    context.instance.add_backfill(backfill)
    context.log.info(f"backfill {backfill.backfill_id}: {len(learners)} learner(s), {described}")


@dg.job(description=__doc__.split("\n\n")[0].replace("\n", " "))
def cohort_backfill():
    request_cohort_backfill()
