"""The sensors on a real instance: drops and sessions found by a high-water mark, learners registered from
cleaned drops, runs requested for exactly what changed, idempotent run keys."""

from __future__ import annotations

import json
import os
import shutil
import time

import dagster as dg
from dagster._core.test_utils import create_run_for_test

from engagement_assets import learner_key
from engagement_assets.automation import sensors
from engagement_assets.automation.sensors import build_sensors
from engagement_assets.automation.watch import looks_back_to, newer_files
from engagement_assets.definitions import defs
from engagement_assets.matching.assets import merged_responses
from engagement_assets.platform.partitions import (
    PARTITION_RANGE_END,
    PARTITION_RANGE_START,
    register_partitions,
    users,
)
from engagement_assets.platform.resources import StoreResource
from engagement_assets.responses.assets import user_responses
from engagement_assets.responses.extract import learners_in_drops
from engagement_assets.settings import Settings
from engagement_assets.storage import layout
from engagement_assets.storage.store import LocalStore, StoredFile
from engagement_assets_tests.ingestion.test_golden_ingestion import DROPS
from engagement_assets_tests.pipeline import (
    PER_LEARNER_STAGES,
    materialize_drops,
    materialize_learner,
    resources_for,
)

# The sensors as the code location builds them from the default settings.
SENSORS = {sensor.name: sensor for sensor in build_sensors(Settings())}
telemetry_drop_sensor, learners_sensor, sessions_sensor, engagement_table_sensor = (
    SENSORS[name]
    for name in ("telemetry_drop_sensor", "learners_sensor", "sessions_sensor", "engagement_table_sensor")
)


def tick(sensor, instance, cursor=None, **resources):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
    return sensor(context)


def covered(instance, request: dg.RunRequest, registered_with: tuple[str, ...] = ()) -> list[str]:
    """The learners a ranged run request covers, in partition order (with the keys the same tick registers)."""
    order = [*instance.get_dynamic_partitions(users.name), *registered_with]
    first, last = request.tags[PARTITION_RANGE_START], request.tags[PARTITION_RANGE_END]
    return order[order.index(first) : order.index(last) + 1]


def test_the_high_water_mark_hands_out_each_file_once_and_rewrites_again():
    files = [StoredFile(f"t/{name}", 1, modified) for name, modified in [("b", 2.0), ("a", 1.0), ("c", 2.0)]]
    first, cursor = newer_files(files, None, limit=2)
    assert [f.key for f in first] == ["t/a", "t/b"]
    second, cursor = newer_files(files, cursor, limit=2)
    assert [f.key for f in second] == ["t/c"]
    assert newer_files(files, cursor, limit=2) == ([], cursor)
    rewritten = [*files, StoredFile("t/a", 2, 5.0)]
    assert [f.key for f in newer_files(rewritten, cursor, limit=5)[0]] == ["t/a"]


def test_a_file_landing_in_the_same_second_with_a_lower_key_is_not_lost():
    # S3 times have one-second resolution: drop_a can land after drop_b was handed out, at the same time.
    _, cursor = newer_files([StoredFile("t/drop_b", 1, 100.0)], None, limit=5)
    later = [
        StoredFile("t/drop_b", 1, 100.0),
        StoredFile("t/drop_a", 1, 100.0),
        StoredFile("t/old", 1, 100.0 - 1000),
    ]
    second, cursor = newer_files(later, cursor, limit=5)
    assert [f.key for f in second] == ["t/drop_a"]  # within the overlap window; t/old is far behind it
    assert newer_files(later, cursor, limit=5) == ([], cursor)


def test_the_cursor_forgets_versions_outside_the_overlap_window():
    stream = [StoredFile(f"t/{i}", 1, float(i * 100)) for i in range(20)]
    cursor = None
    for stored in stream:
        handed, cursor = newer_files([stored], cursor, limit=5)
        assert handed == [stored]
    assert len(json.loads(cursor)["recent"]) <= 4


def test_links_and_fifos_in_the_landing_area_are_never_drops_or_exports(instance, tmp_path, golden):
    landing = tmp_path / "landing"
    shutil.copytree(golden / "landing" / "telemetry", landing / "telemetry")
    outside = tmp_path / "outside.json"
    outside.write_text('[{"secret": "not for the landing area"}]')
    (landing / "telemetry" / "linked.json").symlink_to(outside)
    os.mkfifo(landing / "telemetry" / "pipe.json")
    (landing / "sessions").mkdir()
    (landing / "sessions" / "1234567890_learnerai_data.csv").symlink_to(outside)
    store = StoreResource(url=str(landing))
    result = tick(telemetry_drop_sensor, instance, landing=store)
    assert sorted(request.partition_key for request in result.run_requests) == sorted(DROPS)
    register_partitions(instance, users, ["1234567890"])
    assert tick(sessions_sensor, instance, landing=store).run_requests == []


def test_drop_sensor_registers_and_requests_new_files_only(instance, tmp_path, golden):
    landing = tmp_path / "landing"
    shutil.copytree(golden / "landing" / "telemetry", landing / "telemetry")
    (landing / "telemetry" / "sub").mkdir()
    (landing / "telemetry" / "sub" / "nested.json").write_text("[]")
    store = StoreResource(url=str(landing))
    result = tick(telemetry_drop_sensor, instance, landing=store)
    assert sorted(request.partition_key for request in result.run_requests) == sorted(DROPS)
    assert sorted(result.dynamic_partitions_requests[0].partition_keys) == sorted(DROPS)
    idle = tick(telemetry_drop_sensor, instance, cursor=result.cursor, landing=store)
    assert idle.run_requests == [] and "no new or rewritten file" in idle.skip_reason.skip_message
    new_file = landing / "telemetry" / "drop3.jsonl"
    new_file.write_text("{}\n")
    os.utime(new_file, (time.time() + 5, time.time() + 5))
    again = tick(telemetry_drop_sensor, instance, cursor=result.cursor, landing=store)
    assert [request.partition_key for request in again.run_requests] == ["drop3.jsonl"]
    assert again.run_requests[0].run_key != result.run_requests[0].run_key


def test_drop_sensor_encodes_file_names_that_are_no_safe_keys_and_skips_uploads_in_progress(
    instance, tmp_path
):
    telemetry = tmp_path / "landing" / "telemetry"
    telemetry.mkdir(parents=True)
    names = ["export...2025.json", "~tilde.jsonl", "tab\there.json", "ok.json"]
    for name in [*names, ".ok.json.part"]:
        (telemetry / name).write_text("[]")
    result = tick(telemetry_drop_sensor, instance, landing=StoreResource(url=str(tmp_path / "landing")))
    keys = sorted(request.partition_key for request in result.run_requests)
    assert keys == sorted(learner_key(name) for name in names)
    assert "ok.json" in keys and "~export%2E%2E%2E2025%2Ejson" in keys


def test_learners_sensor_registers_learners_of_cleaned_drops_and_refreshes_known_ones(
    instance, tmp_path, golden
):
    resources = resources_for(str(tmp_path / "w"), str(golden / "landing"))
    warehouse = StoreResource(url=str(tmp_path / "w"))
    materialize_drops(instance, resources, DROPS[:1])
    first = tick(learners_sensor, instance, warehouse=warehouse)
    new = first.dynamic_partitions_requests[0].partition_keys
    assert new and new == sorted(new)
    (ranged,) = first.run_requests
    # The run names its assets, so later ticks can tell which learners it is refreshing.
    assert {key.to_user_string() for key in ranged.asset_selection} == set(PER_LEARNER_STAGES)
    assert (
        ranged.tags["dagster/asset_partition_range_start"],
        ranged.tags["dagster/asset_partition_range_end"],
    ) == (new[0], new[-1])
    register_partitions(instance, users, new)
    assert tick(learners_sensor, instance, cursor=first.cursor, warehouse=warehouse).run_requests == []
    materialize_drops(instance, resources, DROPS)  # the first drop again (re-exported), and a new one
    second = tick(learners_sensor, instance, cursor=first.cursor, warehouse=warehouse)
    added = second.dynamic_partitions_requests[0].partition_keys
    assert added and not set(added) & set(new)  # the new drop's learners are registered
    # Known and new learners are refreshed together: one ranged run, not a run per known learner.
    (batch,) = second.run_requests
    assert batch.partition_key is None
    assert (
        batch.tags["dagster/asset_partition_range_start"],
        batch.tags["dagster/asset_partition_range_end"],
    ) == (new[0], added[-1])


def test_a_learner_deleted_in_the_ui_is_registered_again_when_a_drop_holds_them(instance, tmp_path, golden):
    resources = resources_for(str(tmp_path / "w"), str(golden / "landing"))
    warehouse = StoreResource(url=str(tmp_path / "w"))
    materialize_drops(instance, resources, DROPS[:1])
    first = tick(learners_sensor, instance, warehouse=warehouse)
    learners = first.dynamic_partitions_requests[0].partition_keys
    register_partitions(instance, users, learners)
    tick(learners_sensor, instance, cursor=first.cursor, warehouse=warehouse)  # the order is now kept
    instance.delete_dynamic_partition(users.name, learners[0])
    materialize_drops(instance, resources, DROPS[:1])
    again = tick(learners_sensor, instance, cursor=first.cursor, warehouse=warehouse)
    assert again.dynamic_partitions_requests[0].partition_keys == [learners[0]]
    assert {
        key for request in again.run_requests for key in covered(instance, request, (learners[0],))
    } == set(learners)


def test_learners_sensor_refreshes_scattered_known_learners_in_few_ranged_runs(instance, tmp_path, golden):
    resources = resources_for(str(tmp_path / "w"), str(golden / "landing"))
    warehouse = StoreResource(url=str(tmp_path / "w"))
    materialize_drops(instance, resources, DROPS)
    first = tick(learners_sensor, instance, warehouse=warehouse)
    learners = first.dynamic_partitions_requests[0].partition_keys
    # Thousands of other learners registered between them, as months of drops would leave them.
    others = [f"{i:010d}" for i in range(3_000)]
    register_partitions(instance, users, [learners[0], *others[:1_500], *learners[1:], *others[1_500:]])
    materialize_drops(instance, resources, DROPS[:1])  # a new export of the first drop
    second = tick(learners_sensor, instance, cursor=first.cursor, warehouse=warehouse)
    spans = [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in second.run_requests
    ]
    order = instance.get_dynamic_partitions(users.name)
    covered = {key for start, end in spans for key in order[order.index(start) : order.index(end) + 1]}
    touched = set(learners_in_drops(warehouse.store(), DROPS[:1]))
    assert touched <= covered and len(spans) <= 2
    assert len(covered - touched) <= 100  # no range sweeps up the thousands of untouched learners


def test_sessions_sensor_rematches_known_learners_whose_file_landed(instance, tmp_path, golden):
    landing = tmp_path / "landing"
    shutil.copytree(golden / "landing" / "sessions", landing / "sessions")
    register_partitions(instance, users, ["2698014209", "8682550797"])
    store = StoreResource(url=str(landing))
    result = tick(sessions_sensor, instance, landing=store)
    (batch,) = result.run_requests
    assert covered(instance, batch) == ["2698014209", "8682550797"]
    assert tick(sessions_sensor, instance, cursor=result.cursor, landing=store).run_requests == []


def test_sessions_sensor_reads_a_cursor_stored_before_learners_could_wait(instance, tmp_path, golden):
    landing = tmp_path / "landing"
    shutil.copytree(golden / "landing" / "sessions", landing / "sessions")
    register_partitions(instance, users, ["2698014209"])
    files = StoreResource(url=str(landing)).store().list_files("sessions/")
    _, old_cursor = newer_files(files, None, limit=500)  # the mark alone, as the sensor stored it
    result = tick(sessions_sensor, instance, cursor=old_cursor, landing=StoreResource(url=str(landing)))
    assert result.run_requests == []


def test_sessions_sensor_finds_the_export_of_an_encoded_learner(instance, tmp_path):
    buddy = learner_key("1234567/7654321")
    sessions = tmp_path / "landing" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / f"{buddy}_learnerai_data.csv").write_text("userId\n")
    (sessions / "1234567").mkdir()  # the id written as a path: not this learner's export
    (sessions / "1234567" / "7654321_learnerai_data.csv").write_text("userId\n")
    register_partitions(instance, users, [buddy])
    result = tick(sessions_sensor, instance, landing=StoreResource(url=str(tmp_path / "landing")))
    assert [covered(instance, request) for request in result.run_requests] == [[buddy]]


def test_refresh_sensors_carry_learners_through_the_stages_built_on_what_changed():
    def targets(name: str) -> set[str]:
        job = defs.resolve_job_def(defs.resolve_sensor_def(name).job_name)
        return {key.to_user_string() for key in job.asset_layer.selected_asset_keys}

    per_learner = set(PER_LEARNER_STAGES)
    assert targets("learners_sensor") == per_learner
    assert targets("sessions_sensor") == {"merged_responses", "phase_features"}
    graph = defs.resolve_asset_graph()
    # No condition is evaluated over every learner each tick; the all-learner table follows its sensor.
    for name in [*per_learner, "phase_level_engagement"]:
        assert graph.get(dg.AssetKey(name)).automation_condition is None, name
    assert targets("engagement_table_sensor") == {"phase_level_engagement"}


def test_a_learner_whose_refresh_is_in_flight_waits_for_it_and_is_refreshed_once_after(
    instance, tmp_path, golden
):
    resources = resources_for(str(tmp_path / "w"), str(golden / "landing"))
    warehouse = StoreResource(url=str(tmp_path / "w"))
    materialize_drops(instance, resources, DROPS)
    first = tick(learners_sensor, instance, warehouse=warehouse)
    learners = first.dynamic_partitions_requests[0].partition_keys
    register_partitions(instance, users, learners)
    busy, free = learners[: len(learners) // 2], learners[len(learners) // 2 :]
    running = create_run_for_test(
        instance,
        job_name="__ASSET_JOB",
        status=dg.DagsterRunStatus.STARTED,
        asset_selection={dg.AssetKey("user_responses")},
        tags={PARTITION_RANGE_START: busy[0], PARTITION_RANGE_END: busy[-1]},
    )
    materialize_drops(instance, resources, DROPS[:1])  # re-exported while the first refresh runs
    second = tick(learners_sensor, instance, cursor=first.cursor, warehouse=warehouse)
    touched = set(learners_in_drops(warehouse.store(), DROPS[:1]))
    launched = {key for request in second.run_requests for key in covered(instance, request)}
    assert launched == touched - set(busy) and not launched & set(busy)
    # Nothing new lands; the busy learners wait until their run is over, then get one refresh.
    assert tick(learners_sensor, instance, cursor=second.cursor, warehouse=warehouse).run_requests == []
    instance.report_run_failed(running)
    third = tick(learners_sensor, instance, cursor=second.cursor, warehouse=warehouse)
    assert {key for request in third.run_requests for key in covered(instance, request)} == touched & set(
        busy
    )
    assert tick(learners_sensor, instance, cursor=third.cursor, warehouse=warehouse).run_requests == []
    assert free  # both halves were exercised


def test_learners_wait_for_drops_still_being_cleaned_but_not_for_long(
    instance, tmp_path, golden, monkeypatch
):
    resources = resources_for(str(tmp_path / "w"), str(golden / "landing"))
    warehouse = StoreResource(url=str(tmp_path / "w"))
    materialize_drops(instance, resources, DROPS[:1])
    cleaning = create_run_for_test(
        instance,
        job_name="__ASSET_JOB",
        status=dg.DagsterRunStatus.STARTED,
        asset_selection={dg.AssetKey("cleaned_telemetry")},
        tags={"dagster/partition": DROPS[1]},
    )
    held = tick(learners_sensor, instance, warehouse=warehouse)
    assert held.run_requests == [] and held.dynamic_partitions_requests == [] and held.cursor is None
    monkeypatch.setattr(sensors, "HOLD_FOR_MORE_DROPS_SECONDS", 0.0)  # the other drop takes too long
    assert tick(learners_sensor, instance, warehouse=warehouse).run_requests
    monkeypatch.undo()
    instance.report_run_failed(cleaning)
    assert tick(learners_sensor, instance, warehouse=warehouse).run_requests


def test_the_all_learner_table_is_rebuilt_once_learners_runs_are_over_or_after_the_hold(
    instance, monkeypatch
):
    assert isinstance(tick(engagement_table_sensor, instance), dg.SkipReason)  # nothing changed yet
    register_partitions(instance, users, ["a", "b"])
    for learner in ("a", "b"):
        instance.report_runless_asset_event(dg.AssetMaterialization("phase_features", partition=learner))
    running = create_run_for_test(
        instance,
        job_name="__ASSET_JOB",
        status=dg.DagsterRunStatus.STARTED,
        asset_selection={dg.AssetKey("phase_features")},
        tags={PARTITION_RANGE_START: "a", PARTITION_RANGE_END: "b"},
    )
    assert isinstance(tick(engagement_table_sensor, instance), dg.SkipReason)  # learners still in flight
    monkeypatch.setattr(sensors, "TABLE_HOLD_SECONDS", 0.0)
    assert len(tick(engagement_table_sensor, instance).run_requests) == 1  # held long enough
    monkeypatch.undo()
    instance.report_run_failed(running)
    rebuilt = tick(engagement_table_sensor, instance)
    (request,) = rebuilt.run_requests
    assert request.asset_selection == [dg.AssetKey("phase_level_engagement")]
    assert isinstance(tick(engagement_table_sensor, instance, cursor=rebuilt.cursor), dg.SkipReason)
    instance.report_runless_asset_event(dg.AssetMaterialization("phase_features", partition="a"))
    assert tick(engagement_table_sensor, instance, cursor=rebuilt.cursor).run_requests


def test_an_export_already_read_by_its_learners_last_matching_is_not_matched_again(
    instance, tmp_path, golden
):
    landing = tmp_path / "landing"
    shutil.copytree(golden / "landing", landing)
    resources = resources_for(str(tmp_path / "w"), str(landing))
    materialize_drops(instance, resources, DROPS)
    learners = learners_in_drops(StoreResource(url=str(tmp_path / "w")).store(), DROPS)
    register_partitions(instance, users, learners)
    with_files = sorted(learner for learner in learners if (landing / layout.sessions_key(learner)).exists())
    matched = with_files[0]  # matched after their export landed; the others never were
    materialize_learner(instance, resources, matched, selection=(user_responses, merged_responses))
    store = StoreResource(url=str(landing))
    first = tick(sessions_sensor, instance, landing=store)
    launched = {key for request in first.run_requests for key in covered(instance, request)}
    assert launched == set(with_files) - {matched}
    # The export changes after that matching: now it is matched again.
    later = time.time() + 5
    os.utime(landing / layout.sessions_key(matched), (later, later))
    second = tick(sessions_sensor, instance, cursor=first.cursor, landing=store)
    assert [covered(instance, request) for request in second.run_requests] == [[matched]]


def test_the_sensors_look_as_often_as_the_settings_say_and_batch_as_configured():
    built = {sensor.name: sensor for sensor in build_sensors(Settings(sensor_interval_seconds=60))}
    intervals = {name: sensor.minimum_interval_seconds for name, sensor in built.items()}
    assert intervals == {
        "telemetry_drop_sensor": 10,
        "learners_sensor": 5,
        "sessions_sensor": 60,
        "engagement_table_sensor": 5,
        "downstream_automation": 60,
        "dead_runs_sensor": 60,
    }
    fast = {
        sensor.name: sensor.minimum_interval_seconds
        for sensor in build_sensors(Settings(sensor_interval_seconds=2))
    }
    assert set(fast.values()) == {2}


def test_a_listing_leaves_out_files_older_than_the_cursor_can_hand_out(tmp_path):
    store = LocalStore(tmp_path)
    for name, age in (("old", 10_000), ("recent", 100), ("new", 0)):
        store.put_bytes(b"x", f"sessions/{name}")
        stamp = time.time() - age
        os.utime(store.path(f"sessions/{name}"), (stamp, stamp))
    _, cursor = newer_files(store.list_files("sessions/"), None, limit=10)
    listed = store.list_files("sessions/", modified_since=looks_back_to(cursor))
    assert [f.key for f in listed] == ["sessions/new", "sessions/recent"]
    assert looks_back_to(None) is None and len(store.list_files("sessions/", modified_since=None)) == 3


def test_a_refresh_sensor_with_nothing_to_do_says_why(instance, tmp_path):
    warehouse = StoreResource(url=str(tmp_path / "w"))
    idle = tick(learners_sensor, instance, warehouse=warehouse)
    assert (
        idle.run_requests == [] and idle.skip_reason.skip_message == "no drop cleaned since the last refresh"
    )
    landing = StoreResource(url=str(tmp_path / "landing"))
    (tmp_path / "landing" / "sessions").mkdir(parents=True)
    quiet = tick(sessions_sensor, instance, landing=landing)
    assert "lesson-tracking export" in quiet.skip_reason.skip_message
