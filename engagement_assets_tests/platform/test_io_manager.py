"""The Parquet I/O manager through real materializations: layout, fan-in loading, batched outputs,
unsafe keys, on a temporary folder and on the local S3 server."""

import dagster as dg
import pandas as pd
import pytest

from engagement_assets.platform.io_manager import ParquetIOManager
from engagement_assets.platform.partitions import register_partitions
from engagement_assets.platform.runs import materialize_partition_range
from engagement_assets.storage.keys import UnsafePartitionKey
from engagement_assets.storage.store import open_store
from engagement_assets_tests.pipeline import stored_frame

learners = dg.DynamicPartitionsDefinition(name="test_learners")


@dg.asset(partitions_def=learners, backfill_policy=dg.BackfillPolicy.multi_run(10))
def scores(context: dg.AssetExecutionContext) -> dg.Output:
    frames = {
        key: pd.DataFrame({"learner": [key] * 2, "score": [1.5, 2.5]}) for key in context.partition_keys
    }
    return dg.Output(frames if len(frames) > 1 else next(iter(frames.values())))


@dg.asset(partitions_def=learners)
def doubled(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.assign(score=scores["score"] * 2)


@dg.asset
def everyone(scores: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(scores.values(), ignore_index=True)


@pytest.fixture(params=["local", "s3"])
def storage_url(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "warehouse")
    return f"s3://{request.getfixturevalue('bucket')}/warehouse"


def run_range(instance, storage_url, keys):
    resources = {"io_manager": ParquetIOManager(storage_url=storage_url)}
    return materialize_partition_range(
        [scores, doubled, everyone], scores, keys[0], keys[-1], instance, resources
    )


def test_a_batched_run_writes_one_file_per_partition(instance, storage_url):
    keys = ["u1", "u2", "u3"]
    register_partitions(instance, learners, keys)
    result = run_range(instance, storage_url, keys)
    assert result.success
    store = open_store(storage_url)
    assert [f.key for f in store.list_files("scores/")] == [f"scores/{key}.parquet" for key in keys]
    assert stored_frame(store, "scores/u2.parquet")["learner"].tolist() == ["u2", "u2"]
    materialized = {event.partition for event in result.get_asset_materialization_events() if event.partition}
    assert materialized == set(keys)


def test_downstream_loads_one_partition_or_all_of_them(instance, storage_url):
    register_partitions(instance, learners, ["u1", "u2"])
    resources = {"io_manager": ParquetIOManager(storage_url=storage_url)}
    assert run_range(instance, storage_url, ["u1", "u2"]).success
    assert dg.materialize(
        [scores, doubled], selection=[doubled], partition_key="u2", instance=instance, resources=resources
    ).success
    assert dg.materialize(
        [scores, everyone], selection=[everyone], instance=instance, resources=resources
    ).success
    store = open_store(storage_url)
    assert stored_frame(store, "doubled/u2.parquet")["score"].tolist() == [3.0, 5.0]
    assert sorted(stored_frame(store, "everyone.parquet")["learner"]) == ["u1", "u1", "u2", "u2"]


def test_a_single_value_for_several_partitions_is_refused(instance, tmp_path):
    @dg.asset(partitions_def=learners, name="scores", backfill_policy=dg.BackfillPolicy.multi_run(10))
    def one_frame_for_all() -> pd.DataFrame:
        return pd.DataFrame({"x": [1]})

    register_partitions(instance, learners, ["u1", "u2"])
    resources = {"io_manager": ParquetIOManager(storage_url=str(tmp_path))}
    with pytest.raises(dg.DagsterInvariantViolationError, match="return a mapping"):
        materialize_partition_range([one_frame_for_all], one_frame_for_all, "u1", "u2", instance, resources)


def test_unsafe_partition_keys_never_reach_storage(instance, tmp_path):
    instance.add_dynamic_partitions(learners.name, ["../escape"])
    with pytest.raises(UnsafePartitionKey, match="path separator"):
        dg.materialize(
            [scores],
            partition_key="../escape",
            instance=instance,
            resources={"io_manager": ParquetIOManager(storage_url=str(tmp_path / "w"))},
        )
    assert not (tmp_path / "escape.parquet").exists()
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").rglob("*.parquet"))


def test_register_partitions_rejects_unsafe_keys_before_adding_any(instance):
    with pytest.raises(UnsafePartitionKey):
        register_partitions(instance, learners, ["ok", "1234567/7654321"])
    assert instance.get_dynamic_partitions(learners.name) == []
    assert register_partitions(instance, learners, ["a", "b", "a"]) == ["a", "b"]
    assert register_partitions(instance, learners, ["b", "c"]) == ["c"]


def test_loading_what_was_never_stored_says_so(tmp_path):
    @dg.asset
    def reader(scores: pd.DataFrame) -> None:
        return None

    with pytest.raises(FileNotFoundError, match="materialize it first"):
        dg.materialize(
            [dg.AssetSpec("scores"), reader],
            resources={"io_manager": ParquetIOManager(storage_url=str(tmp_path))},
            selection=[reader],
        )
