"""The README's main command, end to end in a fresh folder: sample data, every stage, a persistent instance."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.definitions import build_definitions
from engagement_assets.devtools import demo
from engagement_assets.prediction.settings import PredictionSettings
from engagement_assets.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def first_ticks_request(instance: dg.DagsterInstance) -> dict[str, int]:
    """The runs a first `dagster dev` on this instance would launch at once: every sensor's first tick from
    an empty cursor, and the first evaluation of the automation conditions (by sensor, when any)."""
    defs = build_definitions(
        Settings.from_env(), ConversationSettings.from_env(), PredictionSettings.from_env()
    )
    requested = {}
    for sensor in defs.sensors:
        if isinstance(sensor, dg.AutomationConditionSensorDefinition):
            continue
        tick = sensor(
            dg.build_sensor_context(instance=instance, resources=defs.resources, sensor_name=sensor.name)
        )
        if getattr(tick, "run_requests", None):
            requested[sensor.name] = len(tick.run_requests)
    automation = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    if automation.total_requested:
        requested["automation"] = automation.total_requested
    return requested


def test_demo_runs_every_available_stage_on_generated_data(tmp_path, monkeypatch, capsys):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)
    for name in ("DAGSTER_HOME", "ENGAGEMENT_STORAGE_URL", "ENGAGEMENT_LANDING_URL", "ENGAGEMENT_ANALYZER"):
        monkeypatch.delenv(name, raising=False)
    assert demo.main(["--learners", "5", "--seed", "3"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "Generating sample data" in out and f"DAGSTER_HOME={tmp_path}" in out
    assert "DEBUG" not in out + captured.err and len(out.splitlines()) < 60  # a story, not a log
    warehouse = tmp_path / "data" / "warehouse"
    distinct = int(re.search(r"([\d,]+) distinct answers", out)[1].replace(",", ""))
    assert distinct == sum(
        pq.read_metadata(path).num_rows for path in (warehouse / "user_responses").glob("*.parquet")
    )
    assert "of the 5 generated have English answers" in out and "Engagement model:" in out
    assert list((warehouse / "cleaned_telemetry").glob("*/part-00000.parquet"))
    learners = sorted(path.stem for path in (warehouse / "user_responses").glob("*.parquet"))
    assert learners and learners == sorted(
        path.stem for path in (warehouse / "merged_responses").glob("*.parquet")
    )
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert sorted(instance.get_dynamic_partitions("users")) == learners
        assert instance.get_latest_materialization_event(dg.AssetKey("merged_responses")) is not None
    assert (tmp_path / ".dagster" / "storage").is_dir()
    # The conversation group ran against the seeded fake NocoDB.
    assert list((warehouse / "conversations").glob("year=*/month=*/day=*/part-00000.parquet"))
    assert (warehouse / "user_analytics.parquet").is_file() and (
        warehouse / "analytics_reports.parquet"
    ).is_file()

    assert (warehouse / "reports" / "engagement_dashboard.html").is_file()
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert first_ticks_request(instance) == {}

    # A second run reuses the landed data and the instance.
    assert demo.main([]) == 0
    assert "Generating sample data" not in capsys.readouterr().out
