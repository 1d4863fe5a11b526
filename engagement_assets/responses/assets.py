"""Stage 2 wiring: each learner's responses, pulled from every cleaned drop."""

import dagster as dg

from engagement_assets.ingestion.assets import CLEANED
from engagement_assets.ingestion.events import RESPONSE_SCHEMA
from engagement_assets.platform.metadata import batch_metadata, counts_table, table_metadata
from engagement_assets.platform.partitions import default_learner_batches, learners_of, users
from engagement_assets.platform.resources import StoreResource
from engagement_assets.responses.extract import extract_learner_responses


@dg.asset(
    partitions_def=users,
    backfill_policy=default_learner_batches,
    deps=[dg.AssetDep(CLEANED, partition_mapping=dg.AllPartitionMapping())],
    group_name="learners",
    kinds={"parquet"},
    metadata=table_metadata(RESPONSE_SCHEMA),
)
def user_responses(context: dg.AssetExecutionContext, warehouse: StoreResource) -> dg.Output:
    """One learner's scorable English responses from every telemetry drop, deduplicated on
    (event_mid, event_ets) keeping the earliest copy, in the order they were received (created_at).
    A refresh reads only the drops cleaned since a learner's responses were stored and carries the stored
    rows over; a learner whose drops changed is rebuilt from every drop. The run's summary reconciles: rows
    read from cleaned drops plus rows carried over are the rows here plus the copies of responses that
    several drops hold."""
    learners = learners_of(context)
    extraction = extract_learner_responses(warehouse.store(), learners)
    rows = {learner: table.num_rows for learner, table in extraction.responses.items()}
    without = [learner for learner, count in rows.items() if count == 0]
    if without:
        context.log.warning(f"{len(without)} learner(s) have no responses, e.g. {without[:5]}")
    summary = {
        "learners": len(learners),
        "learners_without_responses": len(without),
        "rows_read_from_cleaned_drops": extraction.rows_read,
        "rows_carried_from_stored_responses": extraction.rows_carried,
        "learners_rebuilt_from_every_drop": extraction.learners_rebuilt,
        "cleaned_parts_read": extraction.parts_read,
        "rows": int(sum(rows.values())),
        "duplicates_across_drops": extraction.duplicates_across_drops,
    }
    if len(learners) > 1:
        summary["rows_by_learner"] = counts_table(
            dict(sorted(rows.items(), key=lambda kv: -kv[1])[:20]), "learner"
        )
    return dg.Output(extraction.responses, metadata=batch_metadata(summary))
