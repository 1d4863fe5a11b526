"""Helpers that run the real assets on a real Dagster instance and compare outputs with golden CSVs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from engagement_assets.devtools.runs import materialize_partition, materialize_partition_range
from engagement_assets.engagement_pipeline import ASSETS
from engagement_assets.ingestion.assets import cleaned_telemetry
from engagement_assets.platform.partitions import register_partitions, telemetry_drops, users
from engagement_assets.platform.resources import build_resources
from engagement_assets.responses.assets import user_responses
from engagement_assets.settings import Settings
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.store import Store

# The per-learner stages, in order: what the tests expect a drop's refresh to carry.
PER_LEARNER_STAGES = (
    "user_responses",
    "merged_responses",
    "response_audio",
    "audio_analysis",
    "recording_retention",
    "phase_features",
)


def resources_for(storage_url: str, landing_url: str, **settings) -> dict:
    return build_resources(Settings(storage_url=storage_url, landing_url=landing_url, **settings))


def materialize_drops(instance, resources, drops, run_config=None) -> list[dg.ExecuteInProcessResult]:
    register_partitions(instance, telemetry_drops, drops)
    return [
        materialize_partition(ASSETS, cleaned_telemetry, drop, instance, resources, run_config)
        for drop in drops
    ]


def materialize_learners_batched(instance, resources, learners, selection=(user_responses,)):
    """One run of `selection` over all `learners` (as a batched backfill would launch it)."""
    register_partitions(instance, users, learners)
    keys = instance.get_dynamic_partitions(users.name)
    return materialize_partition_range(ASSETS, list(selection), keys[0], keys[-1], instance, resources)


def materialize_learner(instance, resources, learner, selection=(user_responses,)):
    register_partitions(instance, users, [learner])
    return materialize_partition(ASSETS, list(selection), learner, instance, resources)


def stored_frame(store: Store, key: str) -> pd.DataFrame:
    return read_parquet(store, [key]).to_pandas()


def stored_parts(store: Store, prefix: str) -> pd.DataFrame:
    keys = [stored.key for stored in store.list_files(prefix) if stored.key.endswith(".parquet")]
    return read_parquet(store, keys).to_pandas()


def assert_values_equal(actual: pd.DataFrame, expected_csv: Path, keys: list[str]) -> None:
    """Compare values, not bytes: same rows (by `keys`), same columns; timestamps parsed, floats within
    1e-9 relative, missing and empty text treated alike (a CSV cannot tell them apart)."""
    expected = pd.read_csv(expected_csv, dtype=str, keep_default_na=False)
    assert sorted(actual.columns) == sorted(expected.columns), (
        f"columns differ: extra {set(actual.columns) - set(expected.columns)}, "
        f"missing {set(expected.columns) - set(actual.columns)}"
    )
    assert len(actual) == len(expected), f"{len(actual)} rows, expected {len(expected)}"
    expected = _typed_like(expected, actual)
    actual = actual[expected.columns].sort_values(keys, kind="stable").reset_index(drop=True)
    expected = expected.sort_values(keys, kind="stable").reset_index(drop=True)
    for column in expected.columns:
        _assert_column(actual[column], expected[column], column)


def _typed_like(expected: pd.DataFrame, actual: pd.DataFrame) -> pd.DataFrame:
    typed = expected.copy()
    for column in expected.columns:
        kind = actual[column].dtype
        if pd.api.types.is_datetime64_any_dtype(kind):
            typed[column] = pd.to_datetime(expected[column].replace("", None), format="mixed")
        elif pd.api.types.is_numeric_dtype(kind):
            typed[column] = pd.to_numeric(expected[column].replace("", None))
    return typed


def _assert_column(actual: pd.Series, expected: pd.Series, column: str) -> None:
    if pd.api.types.is_numeric_dtype(expected.dtype):
        same = np.isclose(actual.astype(float), expected.astype(float), rtol=1e-9, atol=1e-9, equal_nan=True)
    elif pd.api.types.is_datetime64_any_dtype(expected.dtype):
        same = (actual.astype("datetime64[ms]") == expected.astype("datetime64[ms]")) | (
            actual.isna() & expected.isna()
        )
    else:
        same = actual.fillna("").astype(str).to_numpy() == expected.fillna("").astype(str).to_numpy()
    bad = np.flatnonzero(~np.asarray(same))
    assert not len(bad), (
        f"column {column!r}: {len(bad)} value(s) differ, e.g. row {bad[0]}: "
        f"{actual.iloc[bad[0]]!r} != expected {expected.iloc[bad[0]]!r}"
    )
