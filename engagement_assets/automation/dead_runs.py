"""Runs whose process died, on an instance whose runs are processes on this machine (the laptop profile).

Dagster's default run launcher starts each run as a process beside the code server and cannot tell when that
process is killed (an out-of-memory kill, `kill -9`, a closed terminal): the run stays STARTED forever and its
learners look busy to the refresh sensors. The production profile's run monitoring handles this for its
workers; here the run's own record says which process it is (the "Started process for run" event), and a run
whose process is gone is marked failed, so a retry or the next refresh can take its learners.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher

_RUNNING = [dg.DagsterRunStatus.STARTED]


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Marks failed every STARTED run whose process no longer exists; returns their run ids."""
    if not isinstance(instance.run_launcher, DefaultRunLauncher):
        return []
    dead = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_RUNNING)):
        process = _run_process(instance, run.run_id)
        if process is not None and not still_running(*process):
            instance.report_run_failed(
                run, f"the run's process (pid {process[0]}) is gone: it was killed or crashed; retry the run"
            )
            dead.append(run.run_id)
    return dead


def _run_process(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The run's process id and when the run recorded it."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        pid = event.event_specific_data.metadata.get("pid") if event and event.event_specific_data else None
        if pid is not None and "Started process for run" in (event.message or ""):
            return int(pid.value), entry.timestamp
    return None


def still_running(pid: int, recorded_at: float) -> bool:
    """Whether process `pid` is still the one the run recorded: it exists, has not exited (a zombie), and
    did not start after the run recorded it (the pid would have been recycled)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    started, state = _process_start(pid)
    if state == "Z":
        return False
    return started is None or started <= recorded_at + START_SLACK_SECONDS


# A process's start time is known to the clock tick, and the run records its pid just after starting.
START_SLACK_SECONDS = 2.0


def _process_start(pid: int) -> tuple[float | None, str | None]:
    """(epoch seconds the process started, its state letter) from /proc; (None, None) where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
    except (OSError, IndexError, StopIteration, ValueError):
        return None, None
    # Fields after the command name: state is the 1st, starttime (clock ticks after boot) the 20th.
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), fields[0]
