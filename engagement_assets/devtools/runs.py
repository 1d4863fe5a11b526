"""Running assets in-process on an instance: one partition, or a range of partitions in one run (what a
batched backfill launches)."""

from __future__ import annotations

import dagster as dg

from engagement_assets.platform.partitions import PARTITION_RANGE_END, PARTITION_RANGE_START

# What a demo shows on the console: warnings and errors. Every event still reaches the instance (the UI).
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def materialize_partition(assets, selection, key: str, instance, resources, run_config=None):
    """One run of the `selection` assets (one or a list) for partition `key`."""
    return dg.materialize(
        assets,
        selection=_as_list(selection),
        partition_key=key,
        instance=instance,
        resources=resources,
        run_config=run_config,
    )


def materialize_partition_range(
    assets, selection, first: str, last: str, instance, resources, run_config=None
):
    """One run of the `selection` assets covering every partition from `first` to `last` (in the
    partition set's order)."""
    job = dg.define_asset_job("partition_range", selection=_as_list(selection))
    defs = dg.Definitions(assets=assets, resources=resources, jobs=[job])
    return defs.resolve_job_def(job.name).execute_in_process(
        instance=instance,
        tags={PARTITION_RANGE_START: first, PARTITION_RANGE_END: last},
        run_config=run_config,
    )


def _as_list(selection) -> list:
    return list(selection) if isinstance(selection, (list, tuple)) else [selection]
