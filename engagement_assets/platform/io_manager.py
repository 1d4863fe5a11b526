"""The Parquet I/O manager every table asset persists through, on a local folder or S3.

Layout: `<storage>/<asset>/<partition>.parquet`, or a folder `<storage>/<asset>/<partition>/part-*.parquet`
for assets that stream several parts (`ParquetParts`). Day-partitioned assets may ask (asset metadata
`LAYOUT_METADATA: DAILY_HIVE`) for `<storage>/<asset>/year=YYYY/month=MM/day=DD/` instead. Writes are atomic. A run that covers several
partitions (a batched backfill) returns `{partition_key: value}` and each partition gets its own file, which
Dagster's UPathIOManager cannot do (dagster-io/dagster#14332).
"""

from __future__ import annotations

import tempfile
import typing
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa

from engagement_assets.storage.keys import check_partition_key, daily_hive_folder
from engagement_assets.storage.parquet import ParquetParts, read_parquet, write_parquet
from engagement_assets.storage.store import Store, open_store

PARQUET = ".parquet"
LAYOUT_METADATA = "engagement/partition_layout"
DAILY_HIVE = "daily_hive"


class ParquetIOManager(dg.ConfigurableIOManager):
    """Persists DataFrames, Arrow tables and ParquetParts as Parquet under `storage_url`."""

    storage_url: str

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        store = open_store(self.storage_url)
        layout = (context.definition_metadata or {}).get(LAYOUT_METADATA)
        values = _values_by_partition(context, obj)
        for partition, value in values.items():
            _write(store, _base_key(context.asset_key, partition, layout), value)
        partition, value = next(iter(values.items()))
        suffix = "/" if isinstance(value, ParquetParts) else PARQUET
        context.add_output_metadata(
            {
                "storage": dg.MetadataValue.path(
                    store.uri(_base_key(context.asset_key, partition, layout) + suffix)
                )
            }
        )

    def load_input(self, context: dg.InputContext):
        store = open_store(self.storage_url)
        if not context.has_asset_partitions:
            return _read(store, _base_key(context.asset_key, None)).to_pandas()
        layout = (context.upstream_output.definition_metadata or {}).get(LAYOUT_METADATA)
        frames = {
            key: _read(store, _base_key(context.asset_key, key, layout)).to_pandas()
            for key in context.asset_partition_keys
        }
        if len(frames) == 1 and not _wants_mapping(context):
            return next(iter(frames.values()))
        return frames


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


def _base_key(asset_key: dg.AssetKey, partition: str | None, layout: str | None = None) -> str:
    base = "/".join(asset_key.path)
    if partition is None:
        return base
    if layout == DAILY_HIVE:
        return daily_hive_folder(base, check_partition_key(partition))
    return f"{base}/{check_partition_key(partition)}"


def _write(store: Store, base: str, value) -> None:
    if isinstance(value, ParquetParts):
        try:
            store.replace_folder(base, value.named())
        finally:
            value.discard()
        return
    table = _as_table(value, base)
    with tempfile.TemporaryDirectory(prefix="parquet-io-") as scratch:
        store.put_file(write_parquet(table, Path(scratch) / "value.parquet"), base + PARQUET)


def _as_table(value, base: str) -> pa.Table:
    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pd.DataFrame):
        return pa.Table.from_pandas(value, preserve_index=False)
    raise dg.DagsterInvariantViolationError(
        f"{base}: the Parquet I/O manager stores DataFrames, Arrow tables or ParquetParts, "
        f"not {type(value).__name__}"
    )


def _read(store: Store, base: str) -> pa.Table:
    if store.exists(base + PARQUET):
        return read_parquet(store, [base + PARQUET])
    parts = [stored.key for stored in store.list_files(base + "/") if stored.key.endswith(PARQUET)]
    if parts:
        return read_parquet(store, parts)
    raise FileNotFoundError(f"nothing stored for {base!r} under {store.url} (materialize it first)")


def _wants_mapping(context: dg.InputContext) -> bool:
    typing_type = context.dagster_type.typing_type
    return typing.get_origin(typing_type) in (dict, Mapping) or typing_type is dict
