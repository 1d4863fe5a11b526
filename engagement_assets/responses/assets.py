"""Stage 2 wiring: each learner's responses, pulled from every cleaned drop."""

import dagster as dg
import pyarrow as pa

from engagement_assets.ingestion.assets import cleaned_telemetry
from engagement_assets.platform.metadata import PREVIEW_ROWS, counts_table, preview
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
    tables = extract_learner_responses(warehouse.store(), learners)
    rows = {learner: table.num_rows for learner, table in tables.items()}
    without = [learner for learner, count in rows.items() if count == 0]
    if without:
        context.log.warning(f"{len(without)} learner(s) have no responses, e.g. {without[:5]}")
    first_rows = pa.concat_tables(tables.values()).slice(0, PREVIEW_ROWS).to_pandas()
    metadata = {
        "dagster/row_count": int(sum(rows.values())),
        "learners": len(learners),
        "learners_without_responses": len(without),
        "preview": preview(first_rows),
    }
    if len(learners) > 1:
        metadata["responses_by_learner"] = counts_table(
            dict(sorted(rows.items(), key=lambda kv: -kv[1])[:20]), "learner"
        )
    return dg.Output(tables, metadata=metadata)
