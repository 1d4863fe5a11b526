"""The two partition sets: one key per landed telemetry file, one key per learner.

Keys are `storage.keys.key_of` of the file name or learner id: the text itself when it is safe, else its
reversible encoding, so no learner and no drop is ever refused.
"""

from __future__ import annotations

import warnings

import dagster as dg

from engagement_assets.settings import Settings
from engagement_assets.storage.keys import check_partition_key

telemetry_drops = dg.DynamicPartitionsDefinition(name="telemetry_drops")
# The tags of a run over a range of partitions (what a batched backfill or a refresh sensor launches).
PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"
users = dg.DynamicPartitionsDefinition(name="users")

# Backfill policies are how batched runs are planned; Dagster calls the parameter beta and says so once per
# asset on every code load, and a ranged run over stages with different batch sizes (the refresh sensors'
# runs) is expected to take the smallest. Both warnings would bury what the console has to say.
warnings.filterwarnings(
    "ignore", message="Parameter `backfill_policy` of function `asset`", category=dg.BetaWarning
)
warnings.filterwarnings(
    "ignore", message=".*materializes assets with varying BackfillPolicies", category=UserWarning
)

# Network stages batch fewer learners per run: a run that dies costs less to redo.
NETWORK_LEARNERS_PER_RUN = 50
network_batches = dg.BackfillPolicy.multi_run(max_partitions_per_run=NETWORK_LEARNERS_PER_RUN)


def learner_batches(learners_per_run: int) -> dg.BackfillPolicy:
    """The CPU stages' policy: they handle a whole batch in one pass, so a backfill over thousands of
    learners launches a few runs instead of paying run start-up once per learner."""
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=learners_per_run)


# What the CPU stages declare; the code location applies ENGAGEMENT_LEARNERS_PER_RUN
# (engagement_pipeline.build_engagement_definitions).
default_learner_batches = learner_batches(Settings().learners_per_run)


def learners_of(context: dg.AssetExecutionContext) -> list[str]:
    """The learner keys this run covers (one, or a batch in a backfill), each checked to be a key some
    learner id encodes to (a key added by hand in the UI may not be)."""
    return [check_partition_key(key, users.name) for key in context.partition_keys]


def register_partitions(
    instance: dg.DagsterInstance, partitions: dg.DynamicPartitionsDefinition, keys: list[str]
) -> list[str]:
    """Add keys (made with `key_of`) to a dynamic partition set, all or none; returns the new ones."""
    for key in keys:
        check_partition_key(key, partitions.name)
    existing = set(instance.get_dynamic_partitions(partitions.name))
    new = [key for key in dict.fromkeys(keys) if key not in existing]
    if new:
        instance.add_dynamic_partitions(partitions.name, new)
    return new
