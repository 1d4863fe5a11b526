"""A snapshot of the code location's structure (asset keys, groups, partitions, dependencies, checks,
pools, batch sizes, automation, sensors, resources), so a structural change is always deliberate: it shows
in the diff of `definitions_snapshot.json` (`UPDATE_SNAPSHOT=1 python3 -m pytest
engagement_assets_tests/test_definitions_snapshot.py` rewrites it). Also: the settings reach the definitions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.definitions import build_definitions, defs
from engagement_assets.settings import Settings

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")


def _partitions(partitions_def) -> str | None:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return f"dynamic:{partitions_def.name}"
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return f"{partitions_def.cron_schedule} from {partitions_def.start.date().isoformat()}"
    return type(partitions_def).__name__


def snapshot(definitions: dg.Definitions) -> dict:
    graph = definitions.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        policy = node.backfill_policy
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "executable": node.is_executable,
            "partitions": _partitions(node.partitions_def),
            "parents": sorted(parent.to_user_string() for parent in node.parent_keys),
            "checks": sorted(check.name for check in graph.asset_check_keys if check.asset_key == key),
            "pools": sorted(node.pools or []),
            "learners_per_run": policy.max_partitions_per_run if policy else None,
            "automation": node.automation_condition.get_label() if node.automation_condition else None,
            "kinds": sorted(node.kinds),
        }
    sensors = {
        sensor.name: {
            "interval_seconds": sensor.minimum_interval_seconds,
            "default_status": sensor.default_status.value,
            "targets": sorted(key.to_user_string() for key in _targets(definitions, sensor)),
        }
        for sensor in sorted(definitions.sensors, key=lambda s: s.name)
    }
    return {"assets": assets, "sensors": sensors, "resources": sorted(definitions.resources)}


def _targets(definitions: dg.Definitions, sensor: dg.SensorDefinition) -> set[dg.AssetKey]:
    if sensor.asset_selection is not None:
        return sensor.asset_selection.resolve(definitions.resolve_asset_graph())
    if not sensor.targets:
        return set()  # a sensor that only watches (dead runs)
    return set(definitions.resolve_job_def(sensor.job_name).asset_layer.executable_asset_keys)


def test_the_structure_of_the_code_location_is_the_snapshot():
    current = snapshot(defs)
    if os.environ.get("UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text()), (
        "structure changed: run with UPDATE_SNAPSHOT=1 if meant"
    )


def test_the_settings_shape_the_definitions():
    built = snapshot(
        build_definitions(
            Settings(learners_per_run=200, sensor_interval_seconds=60),
            ConversationSettings(start_date="2025-06-01", categorizer="gemini"),
        )
    )
    assert built["assets"]["user_responses"]["learners_per_run"] == 200
    assert built["assets"]["response_audio"]["learners_per_run"] == 50  # network stages keep theirs
    assert built["sensors"]["sessions_sensor"]["interval_seconds"] == 60
    assert built["sensors"]["nocodb_sensor"]["interval_seconds"] == 60
    assert built["assets"]["categories"]["partitions"] == "0 0 * * * from 2025-06-01"
    assert built["assets"]["categories"]["pools"] == ["gemini"] == built["assets"]["audio_analysis"]["pools"]
    assert snapshot(defs)["assets"]["categories"]["pools"] == []  # the rules categorizer takes no pool
