"""Per-learner asset checks: each learner of a run (one, or a batch) gets their own result, recorded
against their `users` partition, so a failing learner is found on the asset's checks by partition.

Dagster 1.13 records a partitioned check's result per partition only in a single-partition step; a batched
step's `AssetCheckResult` would have no partition. So a batched step records one evaluation per learner,
each linked to that learner's materialization in the run, which is what Dagster does for a single one.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from engagement_assets.platform.partitions import users
from engagement_assets.storage.keys import text_of_key

# Checks per partition are what the per-learner stages need; Dagster calls the parameter a preview and
# says so once per check on every code load.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)
# A run's log names this many of the learners that failed a check.
NAMED_FAILURES = 5


def learner_check(name: str, asset: str, description: str) -> dg.AssetCheckSpec:
    """A check evaluated for each learner, its result shown on their partition."""
    return dg.AssetCheckSpec(name, asset=asset, description=description, partitions_def=users)


def learner_check_evaluations(
    context: dg.AssetExecutionContext, results: Mapping[str, Sequence[dg.AssetCheckResult]]
) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
    """Each learner's check results (by partition key) as their partition's evaluations; yielded after the
    asset's MaterializeResult, so each is linked to the learner's materialization in this run."""
    asset_key = context.assets_def.key
    specs = {spec.key: (name, spec) for name, spec in context.assets_def.check_specs_by_output_name.items()}
    selected = context.selected_asset_check_keys
    for key in sorted(selected, key=lambda key: key.name):
        yield dg.Output(None, output_name=specs[key][0])
    targets = _materializations(context, asset_key, list(results))
    failed: dict[str, list[str]] = {}
    for learner, checks in results.items():
        for result in checks:
            key = dg.AssetCheckKey(asset_key, result.check_name)
            if key not in selected:
                continue
            if not result.passed:
                failed.setdefault(result.check_name, []).append(text_of_key(learner))
            yield dg.AssetCheckEvaluation(
                asset_key=asset_key,
                check_name=result.check_name,
                passed=result.passed,
                metadata={"learner": text_of_key(learner), **result.metadata},
                severity=result.severity,
                description=result.description,
                target_materialization_data=targets.get(learner),
                partition=learner,
                blocking=specs[key][1].blocking,
            )
    for name, learners in failed.items():
        context.log.warning(
            f"{name}: {len(learners)} learner(s) failed, e.g. {learners[:NAMED_FAILURES]} "
            "(the check's result is on each learner's partition)"
        )


def _materializations(
    context: dg.AssetExecutionContext, asset_key: dg.AssetKey, learners: list[str]
) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """Each learner's materialization in this run, read in one query."""
    if not learners:
        return {}
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=learners), limit=len(learners)
    ).records
    run_id = context.run.run_id
    return {
        record.partition_key: AssetCheckEvaluationTargetMaterializationData(
            storage_id=record.storage_id, run_id=run_id, timestamp=record.timestamp
        )
        for record in records
        if record.run_id == run_id
    }
