"""Stage 2 wiring: each learner's responses, pulled from every cleaned drop."""

import dagster as dg
import pandas as pd

from engagement_assets.ingestion.assets import cleaned_telemetry
from engagement_assets.platform.metadata import counts_table, preview
from engagement_assets.platform.partitions import learner_batches, learners_of, users
from engagement_assets.platform.resources import StoreResource
from engagement_assets.responses.extract import extract_learner_responses


@dg.asset(
    partitions_def=users,
    deps=[dg.AssetDep(cleaned_telemetry, partition_mapping=dg.AllPartitionMapping())],
    backfill_policy=learner_batches,
    group_name="learners",
    kinds={"parquet"},
)
def user_responses(context: dg.AssetExecutionContext, warehouse: StoreResource) -> dg.Output:
    """One learner's scorable English responses from every telemetry drop, deduplicated on
    (event_mid, event_ets) keeping the earliest copy, in the order they were received (created_at)."""
    learners = learners_of(context)
    frames = extract_learner_responses(warehouse.store(), learners)
    rows = {learner: len(frame) for learner, frame in frames.items()}
    without = [learner for learner, count in rows.items() if count == 0]
    if without:
        context.log.warning(f"{len(without)} learner(s) have no responses, e.g. {without[:5]}")
    combined = pd.concat(frames.values(), ignore_index=True)
    metadata = {
        "dagster/row_count": int(sum(rows.values())),
        "learners": len(learners),
        "learners_without_responses": len(without),
        "preview": preview(combined),
    }
    if len(learners) > 1:
        metadata["responses_by_learner"] = counts_table(
            dict(sorted(rows.items(), key=lambda kv: -kv[1])[:20]), "learner"
        )
    return dg.Output(frames, metadata=metadata)
