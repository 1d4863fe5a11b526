"""Materialization metadata that reads like a report in the Dagster UI, and each asset's column schema.

A batched run (one run over many learners) records one materialization per learner. What describes one
learner (its row count, file, preview, counts) is attached to that learner's materialization; what
describes the run as a whole is published under `batch/` keys, so a learner's page never shows another
learner's numbers as its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import dagster as dg
import pandas as pd
import pyarrow as pa
from dagster._core.execution.context.metadata_logging import (
    AssetMetadataHandle,
    OutputMetadataAccumulator,
)

from engagement_assets.storage.columns import column, meaning_of

PREVIEW_ROWS = 10
# What could end a table cell or make a link, an image, HTML or code; emphasis is left alone (it cannot
# hide or add anything, and identifiers like not_english stay as they are written).
_MARKDOWN_SPECIAL = re.compile(r"([\\`\[\]<>|!])")
COLUMN_SCHEMA = "dagster/column_schema"
ROW_COUNT = "dagster/row_count"
BATCH = "batch/"


def markdown_text(value: object) -> str:
    """Text from the data as Markdown shows it literally: on one line, with nothing that could end a table
    cell or make a link, an image or HTML (a learner's answer is theirs to write)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def counts_table(counts: Mapping[str, int], label: str = "reason") -> dg.MetadataValue:
    """A Markdown table of counts, largest first (an em dash when there is nothing to count)."""
    if not any(counts.values()):
        return dg.MetadataValue.md("—")
    lines = [f"| {label} | rows |", "|---|---:|"]
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    lines += [f"| {markdown_text(key)} | {count:,} |" for key, count in ordered if count]
    return dg.MetadataValue.md("\n".join(lines))


def preview(frame: pd.DataFrame | pa.Table, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    if isinstance(frame, pa.Table):
        frame = frame.slice(0, rows).to_pandas()
    shown = frame.head(rows).copy()
    for name in shown.columns:
        if not pd.api.types.is_numeric_dtype(shown[name]) and not pd.api.types.is_datetime64_any_dtype(
            shown[name]
        ):
            shown[name] = shown[name].map(lambda value: value if pd.isna(value) else markdown_text(value))
    shown.columns = [markdown_text(name) for name in shown.columns]
    return dg.MetadataValue.md(shown.to_markdown(index=False) if len(shown) else "(no rows)")


def table_metadata(schema: pa.Schema) -> dict:
    """Definition metadata of a table asset: its declared columns and Arrow types, shown in the UI and
    read back by the I/O manager (`declared_schema`) to conform every file it writes."""
    columns = [dg.TableColumn(field.name, str(field.type), meaning_of(field) or None) for field in schema]
    return {COLUMN_SCHEMA: dg.TableSchema(columns=columns)}


def declared_schema(definition_metadata: Mapping | None) -> pa.Schema | None:
    value = (definition_metadata or {}).get(COLUMN_SCHEMA)
    table_schema = getattr(value, "schema", value)
    if table_schema is None:
        return None
    return pa.schema(
        [column(c.name, pa.type_for_alias(c.type), c.description or "") for c in table_schema.columns]
    )


def batch_metadata(summary: Mapping) -> dict:
    """The run's summary under `batch/` keys."""
    return {BATCH + name: value for name, value in summary.items()}


def add_partition_metadata(context, by_partition: Mapping[str, Mapping]) -> None:
    """Attach each partition's own metadata to its materialization in this run (from an asset's context
    or an OutputContext). Dagster's public `add_asset_metadata(partition_key=...)` re-reads every key of
    the partition set from the instance on each call (7.5 s for 1,000 learners of a 1,000-key set, and
    growing with the set), so here the run's keys are read once for all partitions."""
    if isinstance(context, dg.OutputContext):
        step, run_keys = context.step_context, context.asset_partition_keys
    else:
        step, run_keys = context.op_execution_context._step_execution_context, context.partition_keys
    unknown = set(by_partition) - set(run_keys)
    if unknown:
        raise dg.DagsterInvariantViolationError(f"not partitions of this run: {sorted(unknown)[:5]}")
    # One new accumulator for all partitions: adding them one by one copies the whole mapping each time.
    existing = step._metadata_accumulator.per_output_metadata
    added = {}
    for partition_key, metadata in by_partition.items():
        handle = AssetMetadataHandle(asset_key=context.asset_key, partition_key=partition_key)
        added[handle] = {**existing.get(handle, {}), **metadata}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata={**existing, **added})
