"""Stage 2 wiring: each learner's responses, pulled from every cleaned drop."""

import dagster as dg
import pandas as pd

from engagement_assets.ingestion.assets import cleaned_telemetry
from engagement_assets.platform.metadata import counts_table, preview
from engagement_assets.platform.partitions import users
from engagement_assets.platform.resources import StoreResource
from engagement_assets.responses.extract import extract_learner_responses
from engagement_assets.storage.keys import check_partition_key

# Extraction is one pass over the cleaned data whatever the number of learners, so a backfill batches
# learners into few runs instead of paying run start-up once per learner.
LEARNERS_PER_RUN = 500


@dg.asset(
    partitions_def=users,
    deps=[dg.AssetDep(cleaned_telemetry, partition_mapping=dg.AllPartitionMapping())],
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=LEARNERS_PER_RUN),
    group_name="learners",
    kinds={"parquet"},
)
def user_responses(context: dg.AssetExecutionContext, warehouse: StoreResource) -> dg.Output:
    """One learner's scorable English responses from every telemetry drop, deduplicated on
    (event_mid, event_ets) keeping the earliest copy, in the order they were received (created_at)."""
    learners = [check_partition_key(key, users.name) for key in context.partition_keys]
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
    value = frames if len(learners) > 1 else frames[learners[0]]
    return dg.Output(value, metadata=metadata)
