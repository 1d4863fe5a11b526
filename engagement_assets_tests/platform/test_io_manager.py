"""The Parquet I/O manager through real materializations: layout, declared schemas, fan-in loading,
batched outputs with per-partition metadata, encoded keys, on a temporary folder and on the local S3 server."""

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engagement_assets import learner_key
from engagement_assets.devtools.runs import materialize_partition_range
from engagement_assets.platform.io_manager import ParquetIOManager
from engagement_assets.platform.metadata import table_metadata
from engagement_assets.platform.partitions import register_partitions
from engagement_assets.storage.keys import UnsafePartitionKey
from engagement_assets.storage.store import open_store
from engagement_assets.storage.tables import SchemaDrift
from engagement_assets_tests.pipeline import stored_frame

learners = dg.DynamicPartitionsDefinition(name="test_learners")
SCORES = pa.schema([("learner", pa.string()), ("score", pa.float64()), ("at", pa.timestamp("ms"))])
ROWS = {"u1": 1, "u2": 2, "u3": 0}


def scores_of(key: str) -> pd.DataFrame:
    count = ROWS.get(key, 2)
    at = pd.Series(pd.to_datetime(["2025-06-01"] * count)).astype("datetime64[ms]")
    return (
        pd.DataFrame({"learner": [key] * count, "score": [1.5] * count, "at": at})
        if count
        else pd.DataFrame({"learner": [], "score": [], "at": []})
    )


@dg.asset(
    partitions_def=learners, backfill_policy=dg.BackfillPolicy.multi_run(10), metadata=table_metadata(SCORES)
)
def scores(context: dg.AssetExecutionContext) -> dg.Output:
    frames = {key: scores_of(key) for key in context.partition_keys}
    return dg.Output(frames if len(frames) > 1 else next(iter(frames.values())), metadata={"batch/n": 1})


@dg.asset(partitions_def=learners, metadata=table_metadata(SCORES))
def doubled(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.assign(score=scores["score"] * 2)


@dg.asset(metadata=table_metadata(SCORES))
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


def test_each_partition_of_a_batched_run_has_its_own_metadata_and_the_declared_schema(instance, storage_url):
    keys = ["u1", "u2", "u3"]
    register_partitions(instance, learners, keys)
    result = run_range(instance, storage_url, keys)
    store = open_store(storage_url)
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        key = event.partition
        assert metadata["dagster/row_count"].value == ROWS[key]
        assert metadata["storage"].value == store.uri(f"scores/{key}.parquet")
        assert f"| {key} " in metadata["preview"].value or ROWS[key] == 0
        assert metadata["batch/n"].value == 1
        assert len(stored_frame(store, f"scores/{key}.parquet")) == ROWS[key]
        filesystem, root = store.arrow()
        with filesystem.open_input_file(f"{root}/scores/{key}.parquet") as file:
            assert pq.read_schema(file).remove_metadata() == SCORES  # the empty one too: no null columns


def test_a_value_that_drifts_from_the_declared_schema_fails_naming_asset_and_column(instance, tmp_path):
    @dg.asset(partitions_def=learners, name="scores", metadata=table_metadata(SCORES))
    def drifted() -> pd.DataFrame:
        return pd.DataFrame({"learner": ["u1"], "score": ["high"], "at": [None]})

    @dg.asset(partitions_def=learners, name="scores", metadata=table_metadata(SCORES))
    def extra_column() -> pd.DataFrame:
        return pd.DataFrame({"learner": ["u1"], "score": [1.0], "at": [None], "why": ["x"]})

    register_partitions(instance, learners, ["u1"])
    resources = {"io_manager": ParquetIOManager(storage_url=str(tmp_path))}
    with pytest.raises(SchemaDrift, match="scores: column 'score'"):
        dg.materialize([drifted], partition_key="u1", instance=instance, resources=resources)
    with pytest.raises(SchemaDrift, match=r"scores: columns differ .*unexpected \['why'\]"):
        dg.materialize([extra_column], partition_key="u1", instance=instance, resources=resources)
    assert not (tmp_path / "scores").exists()


def test_a_stage_s_own_file_notes_are_stored_and_nothing_else_of_its_schema(instance, tmp_path):
    @dg.asset(partitions_def=learners, name="scores", metadata=table_metadata(SCORES))
    def noted() -> pa.Table:
        table = pa.Table.from_pandas(scores_of("u1"), preserve_index=False)
        return table.replace_schema_metadata({b"engagement.built_from": b"d1", b"other": b"x"})

    register_partitions(instance, learners, ["u1"])
    resources = {"io_manager": ParquetIOManager(storage_url=str(tmp_path))}
    assert dg.materialize([noted], partition_key="u1", instance=instance, resources=resources).success
    stored = pq.read_schema(tmp_path / "scores" / "u1.parquet")
    assert stored.metadata == {b"engagement.built_from": b"d1"}
    assert stored.remove_metadata() == SCORES


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
    assert stored_frame(store, "doubled/u2.parquet")["score"].tolist() == [3.0, 3.0]
    assert sorted(stored_frame(store, "everyone.parquet")["learner"]) == ["u1", "u2", "u2"]


def test_a_single_value_for_several_partitions_is_refused(instance, tmp_path):
    @dg.asset(
        partitions_def=learners,
        name="scores",
        backfill_policy=dg.BackfillPolicy.multi_run(10),
        metadata=table_metadata(SCORES),
    )
    def one_frame_for_all() -> pd.DataFrame:
        return pd.DataFrame({"x": [1]})

    register_partitions(instance, learners, ["u1", "u2"])
    resources = {"io_manager": ParquetIOManager(storage_url=str(tmp_path))}
    with pytest.raises(dg.DagsterInvariantViolationError, match="return a mapping"):
        materialize_partition_range([one_frame_for_all], one_frame_for_all, "u1", "u2", instance, resources)


def test_encoded_keys_are_stored_as_their_own_files(instance, tmp_path):
    ids = ["1234567/7654321", "victim", "victim.parquet", "../escape"]
    keys = [learner_key(text) for text in ids]
    register_partitions(instance, learners, keys)
    assert run_range(instance, str(tmp_path / "w"), keys).success
    store = open_store(tmp_path / "w")
    assert {f.key for f in store.list_files("scores/")} == {f"scores/{key}.parquet" for key in keys}
    assert stored_frame(store, "scores/~1234567%2F7654321.parquet")["learner"].tolist() == [keys[0]] * 2
    assert not (tmp_path / "escape.parquet").exists()


def test_a_key_no_learner_id_encodes_to_never_reaches_storage(instance, tmp_path):
    instance.add_dynamic_partitions(learners.name, ["../escape"])
    with pytest.raises(UnsafePartitionKey, match="~%2E%2E%2Fescape"):
        dg.materialize(
            [scores],
            partition_key="../escape",
            instance=instance,
            resources={"io_manager": ParquetIOManager(storage_url=str(tmp_path / "w"))},
        )
    assert not (tmp_path / "escape.parquet").exists()
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").rglob("*.parquet"))


def test_register_partitions_takes_keys_all_or_none(instance):
    with pytest.raises(UnsafePartitionKey):
        register_partitions(instance, learners, ["ok", "1234567/7654321"])
    assert instance.get_dynamic_partitions(learners.name) == []
    assert register_partitions(instance, learners, ["a", "b", "a"]) == ["a", "b"]
    assert register_partitions(instance, learners, ["b", learner_key("1234567/7654321")]) == [
        "~1234567%2F7654321"
    ]


def test_loading_what_was_never_stored_says_so(tmp_path):
    @dg.asset
    def reader(scores: pd.DataFrame) -> None:
        return None

    with pytest.raises(FileNotFoundError, match="materialize it first"):
        dg.materialize(
            [dg.AssetSpec("scores", metadata=table_metadata(SCORES)), reader],
            resources={"io_manager": ParquetIOManager(storage_url=str(tmp_path))},
            selection=[reader],
        )
