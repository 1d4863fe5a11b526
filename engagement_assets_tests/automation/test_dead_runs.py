"""A run whose process was killed is marked failed on the laptop profile; a live one is left alone."""

from __future__ import annotations

import subprocess
import sys
import time

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.test_utils import create_run_for_test

from engagement_assets.automation.dead_runs import fail_dead_runs, still_running
from engagement_assets.automation.sensors import build_sensors
from engagement_assets.settings import Settings

SENSOR = next(sensor for sensor in build_sensors(Settings()) if sensor.name == "dead_runs_sensor")


def started_run(instance, pid: int) -> dg.DagsterRun:
    run = create_run_for_test(instance, job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED)
    instance.report_engine_event(
        f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
    )
    return run


@pytest.fixture
def worker():
    """A process standing for a run worker, for as long as the test needs."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def test_a_run_whose_process_is_gone_is_marked_failed_and_a_live_one_is_not(instance, worker):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    dead = started_run(instance, finished.pid)
    alive = started_run(instance, worker.pid)
    result = SENSOR(dg.build_sensor_context(instance=instance))
    assert "1 run(s)" in result.skip_message
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
    failure = instance.all_logs(dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert f"pid {finished.pid}" in failure[0].dagster_event.message
    assert fail_dead_runs(instance) == []  # already failed: nothing more to do


def test_a_recycled_pid_does_not_keep_a_run_alive(worker):
    # The process behind the pid started after the run recorded it: another program got the number.
    assert not still_running(worker.pid, recorded_at=time.time() - 3600)
    assert still_running(worker.pid, recorded_at=time.time())


def test_a_run_without_a_process_record_is_left_alone(instance):
    run = create_run_for_test(instance, job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED)
    assert fail_dead_runs(instance) == []
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
