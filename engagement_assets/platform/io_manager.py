"""The Parquet I/O manager every table asset persists through, on a local folder or S3.

Paths come from the storage layout (`storage/layout.py`): `<asset>/<partition>.parquet`, a folder of parts
for assets that stream several (`ParquetParts`), or `<asset>/year=YYYY/month=MM/day=DD/` for day-partitioned
assets that ask for it (definition metadata `LAYOUT_METADATA: DAILY_HIVE`). Every file is written with the
asset's declared schema (`platform.metadata.table_metadata`), atomically. A run that covers several
partitions (a batched backfill) returns `{partition_key: value}`: each partition gets its own file, which
Dagster's UPathIOManager cannot do (dagster-io/dagster#14332), and its own row count, path and preview.
"""

from __future__ import annotations

import tempfile
import typing
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from engagement_assets.platform.metadata import (
    PREVIEW_ROWS,
    ROW_COUNT,
    add_partition_metadata,
    declared_schema,
    preview,
)
from engagement_assets.storage import layout
from engagement_assets.storage.parquet import ParquetParts, read_parquet, write_parquet
from engagement_assets.storage.store import Store, open_store
from engagement_assets.storage.tables import check_schema, conform

LAYOUT_METADATA = "engagement/partition_layout"
STAGE_METADATA_PREFIX = b"engagement."
DAILY_HIVE = "daily_hive"


class ParquetIOManager(dg.ConfigurableIOManager):
    """Persists DataFrames, Arrow tables and ParquetParts as Parquet under `storage_url`."""

    storage_url: str

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        store = open_store(self.storage_url)
        asset = _asset_name(context.asset_key)
        schema = declared_schema(context.definition_metadata)
        if schema is None:
            raise dg.DagsterInvariantViolationError(
                f"{asset}: the Parquet I/O manager stores only assets that declare their columns "
                "(metadata=table_metadata(schema))"
            )
        layout_name = (context.definition_metadata or {}).get(LAYOUT_METADATA)
        written = {
            partition: _write(store, _location(asset, partition, layout_name, value), value, schema, asset)
            for partition, value in _values_by_partition(context, obj).items()
        }
        if None in written:
            context.add_output_metadata(written[None])
        else:
            add_partition_metadata(context, written)

    def load_input(self, context: dg.InputContext):
        store = open_store(self.storage_url)
        asset = _asset_name(context.asset_key)
        upstream = context.upstream_output.definition_metadata if context.upstream_output else None
        schema = declared_schema(upstream)
        if not context.has_asset_partitions:
            return _read(store, layout.table_file(asset), None, schema).to_pandas()
        layout_name = (upstream or {}).get(LAYOUT_METADATA)
        frames = {
            key: _read(store, *_candidates(asset, key, layout_name), schema).to_pandas()
            for key in context.asset_partition_keys
        }
        if len(frames) == 1 and not _wants_mapping(context):
            return next(iter(frames.values()))
        return frames


def _asset_name(asset_key: dg.AssetKey) -> str:
    return "/".join(asset_key.path)


def _values_by_partition(context: dg.OutputContext, obj) -> dict:
    if not context.has_asset_partitions:
        return {None: obj}
    keys = list(context.asset_partition_keys)
    if isinstance(obj, Mapping):
        unexpected = set(obj) - set(keys)
        missing = set(keys) - set(obj)
        if unexpected or missing:
            raise dg.DagsterInvariantViolationError(
                f"{context.asset_key.to_user_string()}: the returned mapping must have exactly the run's "
                f"partition keys; unexpected {sorted(unexpected)[:5]}, missing {sorted(missing)[:5]}"
            )
        return dict(obj)
    if len(keys) > 1:
        raise dg.DagsterInvariantViolationError(
            f"{context.asset_key.to_user_string()} ran for {len(keys)} partitions but returned one value; "
            "return a mapping {partition_key: value} so each partition gets its own file"
        )
    return {keys[0]: obj}


def _location(asset: str, partition: str | None, layout_name: str | None, value) -> str:
    """The file (or, ending in '/', the folder of parts) one partition is stored as."""
    if partition is None:
        return layout.table_file(asset)
    if layout_name == DAILY_HIVE:
        return layout.day_folder(asset, partition)
    if isinstance(value, ParquetParts):
        return layout.partition_folder(asset, partition)
    return layout.partition_file(asset, partition)


def _candidates(asset: str, partition: str, layout_name: str | None) -> tuple[str | None, str]:
    """Where a partition may be stored: as one file (None for day folders), else as a folder of parts."""
    if layout_name == DAILY_HIVE:
        return None, layout.day_folder(asset, partition)
    return layout.partition_file(asset, partition), layout.partition_folder(asset, partition)


def _write(store: Store, location: str, value, schema: pa.Schema, asset: str) -> dict:
    """Store one partition; returns the metadata that describes it."""
    if isinstance(value, ParquetParts):
        try:
            for path in value.files:
                check_schema(pq.read_schema(path), schema, asset)
            store.replace_folder(location, value.named())
            first_rows = _first_rows(value, schema)
        finally:
            value.discard()
        rows = value.rows
    else:
        table = _with_stage_metadata(conform(value, schema, asset), value)
        with tempfile.TemporaryDirectory(prefix="parquet-io-") as scratch:
            store.put_file(write_parquet(table, Path(scratch) / "value.parquet"), location)
        rows, first_rows = table.num_rows, table.slice(0, PREVIEW_ROWS)
    return {
        ROW_COUNT: rows,
        "storage": dg.MetadataValue.path(store.uri(location)),
        "preview": preview(first_rows),
    }


def _with_stage_metadata(table: pa.Table, value) -> pa.Table:
    """Keep the file-level notes a stage attached to its table (keys starting `engagement.`, such as what
    stage 2 built a learner's rows from); the columns are the declared ones either way."""
    notes = {
        key: note
        for key, note in ((value.schema.metadata or {}) if isinstance(value, pa.Table) else {}).items()
        if key.startswith(STAGE_METADATA_PREFIX)
    }
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **notes}) if notes else table


def _first_rows(parts: ParquetParts, schema: pa.Schema) -> pa.Table:
    for path in parts.files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=PREVIEW_ROWS):
            if batch.num_rows:
                return pa.Table.from_batches([batch])
    return schema.empty_table()


def _read(store: Store, file_key: str | None, folder: str | None, schema: pa.Schema | None) -> pa.Table:
    if file_key and store.exists(file_key):
        return read_parquet(store, [file_key], schema=schema)
    parts = [f.key for f in store.list_files(folder) if f.key.endswith(layout.PARQUET)] if folder else []
    if parts:
        return read_parquet(store, parts, schema=schema)
    where = file_key or folder
    raise FileNotFoundError(f"nothing stored for {where!r} under {store.url} (materialize it first)")


def _wants_mapping(context: dg.InputContext) -> bool:
    typing_type = context.dagster_type.typing_type
    return typing.get_origin(typing_type) in (dict, Mapping) or typing_type is dict
