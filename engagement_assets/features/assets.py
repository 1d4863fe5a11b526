"""Stage 6 wiring: phase features per learner, and the all-learner table with its CSV export."""

from collections import Counter

import dagster as dg
import pandas as pd

from engagement_assets.analysis.schema import CATEGORY_SETS
from engagement_assets.features import phases
from engagement_assets.features.engagement_table import engagement_table, export_engagement_csv
from engagement_assets.features.phases import BOUNDED_SCORES, FEATURES_SCHEMA, NO_SESSION, UNMAPPED_PROGRESS
from engagement_assets.features.summary import by_phase
from engagement_assets.platform.checks import learner_check, learner_check_evaluations
from engagement_assets.platform.metadata import (
    add_partition_metadata,
    batch_metadata,
    counts_table,
    table_metadata,
)
from engagement_assets.platform.partitions import default_learner_batches, learners_of, users
from engagement_assets.platform.resources import StoreResource

UNMAPPED_CHECK = "rows_dropped_for_unmapped_progress"
RANGES_CHECK = "scores_and_categories_in_range"


@dg.asset(
    partitions_def=users,
    group_name="features",
    backfill_policy=default_learner_batches,
    kinds={"parquet"},
    metadata=table_metadata(FEATURES_SCHEMA),
    check_specs=[
        learner_check(
            UNMAPPED_CHECK,
            "phase_features",
            "The learner's matched responses whose lesson progress names no phase (e.g. a game over at 26).",
        ),
        learner_check(
            RANGES_CHECK,
            "phase_features",
            "The learner's averages within 0-100 and categories within their sets.",
        ),
    ],
)
def phase_features(
    context: dg.AssetExecutionContext,
    merged_responses: dict[str, pd.DataFrame],
    audio_analysis: dict[str, pd.DataFrame],
):
    """One row per practice phase a learner went through (learner, session, milestone level, phase P1…P8,
    S1, S2): when it started and ended, how many responses, mean accuracy, EQ and engagement, the most
    frequent emotion, engagement state, pronunciation and audio quality, and the gap to the next phase."""
    frames, excluded, described, checked = {}, Counter(), {}, {}
    for learner in learners_of(context):
        result = phases.phase_features(merged_responses[learner], audio_analysis[learner])
        frames[learner] = result.features
        excluded.update(result.excluded)
        described[learner] = _described(result.features, result.excluded)
        checked[learner] = _checked(result)
    add_partition_metadata(context, described)
    combined = pd.concat(frames.values(), ignore_index=True)
    yield dg.MaterializeResult(
        value=frames,
        metadata=batch_metadata(
            {"learners": len(frames), "phases": len(combined), **_described(combined, excluded)}
        ),
    )
    yield from learner_check_evaluations(context, checked)


def _checked(result: phases.PhaseFeatures) -> list[dg.AssetCheckResult]:
    """One learner's check results."""
    out_of_range = _out_of_range(result.features)
    return [
        dg.AssetCheckResult(
            check_name=UNMAPPED_CHECK,
            passed=result.excluded[UNMAPPED_PROGRESS] == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                UNMAPPED_PROGRESS: result.excluded[UNMAPPED_PROGRESS],
                NO_SESSION: result.excluded[NO_SESSION],
            },
        ),
        dg.AssetCheckResult(
            check_name=RANGES_CHECK,
            passed=not out_of_range,
            metadata={"violations": counts_table(out_of_range, "column")},
        ),
    ]


@dg.asset(
    deps=[dg.AssetDep(phase_features, partition_mapping=dg.AllPartitionMapping())],
    group_name="features",
    kinds={"parquet", "csv", "duckdb"},
    metadata=table_metadata(FEATURES_SCHEMA),
)
def phase_level_engagement(
    context: dg.AssetExecutionContext, warehouse: StoreResource
) -> dg.MaterializeResult[pd.DataFrame]:
    """Every learner's phase features in one table (the original system's output), read with DuckDB from
    the per-learner files and exported as `exports/phase_level_engagement_full.csv` with the original
    columns in their original order, then the added ones."""
    store = warehouse.store()
    table = engagement_table(store)
    export_uri = export_engagement_csv(store)
    return dg.MaterializeResult(
        value=table,
        metadata={
            "learners": int(table["UserId"].nunique()),
            "by_phase": dg.MetadataValue.md(by_phase(table).round(1).to_markdown()),
            "export": dg.MetadataValue.path(export_uri),
        },
    )


def _described(features: pd.DataFrame, excluded: Counter) -> dict:
    return {
        "phases_by_name": counts_table(features["Phase"].value_counts().to_dict(), "phase"),
        "responses_excluded": counts_table(excluded),
    }


def _out_of_range(features: pd.DataFrame) -> dict[str, int]:
    violations = {}
    for column in BOUNDED_SCORES:
        values = features[column].dropna()
        violations[column] = int(((values < 0) | (values > 100)).sum())
    for column, allowed in CATEGORY_SETS.items():
        values = features[column].dropna()
        violations[column] = int((~values.isin(allowed)).sum())
    return {column: count for column, count in violations.items() if count}
