"""A real Dagster deployment for end-to-end tests: `dagster dev` (webserver, daemon, code server) as a
subprocess on 127.0.0.1 against a throwaway instance, driven only through its GraphQL endpoint.

Every wait is bounded and fails with what was seen last and the tail of the server log.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCATION = "engagement_assets.definitions"
REPOSITORY = "__repository__"
SENSORS = (
    "telemetry_drop_sensor",
    "learners_sensor",
    "sessions_sensor",
    "engagement_table_sensor",
    "downstream_automation",
    "dead_runs_sensor",
    "nocodb_sensor",
)

# Inherited settings that would change what the pipeline computes or where it reads and writes.
_SCRUBBED_PREFIXES = ("ENGAGEMENT_", "GEMINI_", "GOOGLE_", "AWS_", "DAGSTER_")
_SCRUBBED_NAMES = ("ANALYSIS_IMPORT_URL", "AUDIO_SOURCE_URL")
# The only proxies are on the far side of 127.0.0.1; never route local traffic through one.
_NO_PROXY = "127.0.0.1,localhost"

IN_PROGRESS_RUNS = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
BAD_RUNS = ("FAILURE", "CANCELED")
IN_PROGRESS_BACKFILLS = ("REQUESTED", "CANCELING", "FAILING")
BAD_BACKFILLS = ("FAILED", "COMPLETED_FAILED", "CANCELED")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class E2EFailure(AssertionError):
    pass


def start_side_by_side(request, fixture_names: Iterable[str]) -> None:
    """Start every deployment fixture that the module's selected tests use before any test waits: they
    spend most of their time waiting for daemon ticks, so side by side they take little longer than one."""
    used = {
        name
        for item in request.session.items
        if item.module is request.module
        for name in getattr(item, "fixturenames", ())
    }
    for name in fixture_names:
        if name in used:
            request.getfixturevalue(name)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_SCRUBBED_PREFIXES) and name not in _SCRUBBED_NAMES
    }
    env.update(NO_PROXY=_NO_PROXY, no_proxy=_NO_PROXY, PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


@dataclass
class Materialization:
    asset: str
    partition: str | None
    run_id: str
    timestamp: float  # epoch seconds


@dataclass
class Snapshot:
    """What the deployment reports at one moment: runs, backfills, and every materialization."""

    runs: list[dict]
    backfills: list[dict]
    materializations: list[Materialization] = field(default_factory=list)

    def active_runs(self) -> list[dict]:
        return [run for run in self.runs if run["status"] in IN_PROGRESS_RUNS]

    def bad_runs(self) -> list[dict]:
        return [run for run in self.runs if run["status"] in BAD_RUNS]

    def active_backfills(self) -> list[dict]:
        return [backfill for backfill in self.backfills if backfill["status"] in IN_PROGRESS_BACKFILLS]

    def bad_backfills(self) -> list[dict]:
        return [backfill for backfill in self.backfills if backfill["status"] in BAD_BACKFILLS]

    def materialized(self, asset: str) -> dict[str | None, list[Materialization]]:
        found: dict[str | None, list[Materialization]] = {}
        for event in self.materializations:
            if event.asset == asset:
                found.setdefault(event.partition, []).append(event)
        return found

    def latest(self, asset: str) -> float | None:
        times = [event.timestamp for event in self.materializations if event.asset == asset]
        return max(times) if times else None

    def missing(self, expected: Mapping[str, set[str | None]]) -> dict[str, list]:
        gaps = {}
        for asset, partitions in expected.items():
            absent = sorted(partitions - set(self.materialized(asset)), key=str)
            if absent:
                gaps[asset] = absent
        return gaps

    def signature(self) -> tuple:
        return (
            tuple(sorted((run["runId"], run["status"]) for run in self.runs)),
            tuple(sorted((backfill["id"], backfill["status"]) for backfill in self.backfills)),
            len(self.materializations),
        )

    def describe(self) -> str:
        lines = [f"{len(self.runs)} run(s):"]
        for run in sorted(self.runs, key=lambda run: run.get("creationTime") or 0):
            tags = {tag["key"]: tag["value"] for tag in run["tags"]}
            scope = tags.get("dagster/partition") or (
                f"{tags.get('dagster/asset_partition_range_start')}..{tags.get('dagster/asset_partition_range_end')}"
                if "dagster/asset_partition_range_start" in tags
                else "-"
            )
            assets = ",".join(key["path"][-1] for key in run.get("assetSelection") or []) or "?"
            origin = tags.get("dagster/sensor_name") or tags.get("dagster/backfill") or "manual"
            lines.append(f"  {run['runId'][:8]} {run['status']:<9} {assets} [{scope}] by {origin}")
        lines.append(
            f"{len(self.backfills)} backfill(s): "
            + ", ".join(f"{backfill['id']}={backfill['status']}" for backfill in self.backfills)
        )
        per_asset: dict[str, int] = {}
        for event in self.materializations:
            per_asset[event.asset] = per_asset.get(event.asset, 0) + 1
        lines.append(f"materializations per asset: {per_asset}")
        return "\n".join(lines)


_SNAPSHOT_QUERY = """
query Snapshot {
  runsOrError(limit: 500) {
    __typename
    ... on Runs { results { runId status creationTime tags { key value } assetSelection { path } } }
    ... on PythonError { message }
  }
  partitionBackfillsOrError(limit: 100) {
    __typename
    ... on PartitionBackfills { results { id status } }
    ... on PythonError { message }
  }
  assetsOrError {
    __typename
    ... on AssetConnection {
      nodes { key { path } assetMaterializations { partition runId timestamp } }
    }
    ... on PythonError { message }
  }
}
"""

# What the UI shows on an asset's partition page: each materialization's own metadata, newest first.
_MATERIALIZATION_METADATA_QUERY = """
query MaterializationMetadata($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations {
        partition runId
        metadataEntries { label ... on IntMetadataEntry { intValue } ... on PathMetadataEntry { path } }
      }
    }
  }
}
"""

_LOCATION_QUERY = """
query Location {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message stack } }
      }
    }
  }
}
"""

_SENSORS_QUERY = """
query Sensors($selector: RepositorySelector!) {
  sensorsOrError(repositorySelector: $selector) {
    __typename
    ... on Sensors {
      results { name sensorState { status ticks(limit: 5) { status timestamp } } }
    }
    ... on PythonError { message }
  }
}
"""

_RUN_ERRORS_QUERY = """
query RunErrors($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepFailureEvent { stepKey error { message } }
        ... on RunFailureEvent { message }
        ... on EngineEvent { message error { message } }
      }
    }
  }
}
"""

_LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { message partitionKeys }
    ... on PartitionSetNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""

_LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
  }
}
"""

_BACKFILLS_WITH_TAGS = """
query Backfills {
  partitionBackfillsOrError(limit: 100) {
    __typename
    ... on PartitionBackfills { results { id status title tags { key value } } }
    ... on PythonError { message }
  }
}
"""

_BACKFILL_QUERY = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id status timestamp endTimestamp partitionNames
      assetSelection { path }
      error { message }
      runs(limit: 100) { runId status tags { key value } assetSelection { path } }
    }
    ... on PythonError { message }
    ... on BackfillNotFoundError { message }
  }
}
"""


class DagsterServer:
    """One `dagster dev` process group with its own instance folder; use as a context manager."""

    # The code location's sensors, all expected to run by default (a subclass serving other code may differ).
    expected_sensors: tuple[str, ...] = SENSORS

    def __init__(
        self,
        home: Path,
        env: Mapping[str, str],
        startup_timeout: float = 120.0,
        instance_config: Path = REPO_ROOT / "dagster.yaml",
    ):
        self.home = home
        self.instance_config = instance_config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "server.log"
        self._env = server_environment({**env, "DAGSTER_HOME": str(home)})
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen | None = None
        self._log_file = None
        self._http = requests.Session()
        self._http.trust_env = False  # no proxy for 127.0.0.1

    # -- life cycle -------------------------------------------------------------------------------

    def __enter__(self) -> DagsterServer:
        self.home.mkdir(parents=True, exist_ok=True)
        # The instance configuration (the repository's by default), unchanged: relative paths resolve in `home`.
        shutil.copy(self.instance_config, self.home / "dagster.yaml")
        self._log_file = open(self.log_path, "wb")  # closed in stop()
        command = [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-m",
            LOCATION,
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
        ]
        self._process = subprocess.Popen(
            command,
            cwd=self.home,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: webserver, daemon, code server and runs
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        """Terminate the whole process group (runs included), then kill whatever is left."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._http.close()

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        return "\n".join(_ANSI.sub("", line) for line in text.splitlines()[-lines:])

    def fail(self, message: str) -> E2EFailure:
        return E2EFailure(f"{message}\n--- last lines of {self.log_path} ---\n{self.log_tail()}")

    def _check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise self.fail(f"`dagster dev` exited with code {self._process.returncode}")

    def _wait_ready(self) -> None:
        """Webserver answering, code location loaded, every sensor running and ticked at least once."""
        deadline = time.monotonic() + self._startup_timeout
        seen = "nothing yet"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                response = self._http.get(f"{self.url}/server_info", timeout=5)
                if response.status_code != 200:
                    seen = f"/server_info answered {response.status_code}"
                else:
                    seen = self._readiness()
                    if seen == "ready":
                        return
            except requests.RequestException as error:
                seen = f"{type(error).__name__}"
            time.sleep(1)
        raise self.fail(f"server not ready after {self._startup_timeout:.0f}s (last seen: {seen})")

    def _readiness(self) -> str:
        entries = self.graphql(_LOCATION_QUERY)["workspaceOrError"].get("locationEntries") or []
        entry = next((e for e in entries if e["name"] == LOCATION), None)
        if entry is None or entry["loadStatus"] != "LOADED":
            return f"location {entry and entry['loadStatus']}"
        if entry["locationOrLoadError"]["__typename"] != "RepositoryLocation":
            raise self.fail(f"code location failed to load: {entry['locationOrLoadError']}")
        sensors = self.sensors()
        if sorted(sensors) != sorted(self.expected_sensors):
            raise self.fail(f"unexpected sensors {sorted(sensors)}")
        not_running = [name for name, state in sensors.items() if state["status"] != "RUNNING"]
        if not_running:
            raise self.fail(f"sensors not running by default: {not_running}")
        unticked = [name for name, state in sensors.items() if not state["ticks"]]
        return f"sensors without a tick yet: {unticked}" if unticked else "ready"

    # -- GraphQL ----------------------------------------------------------------------------------

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict:
        self._check_alive()
        response = self._http.post(
            f"{self.url}/graphql", json={"query": query, "variables": dict(variables or {})}, timeout=60
        )
        if response.status_code != 200:
            raise self.fail(f"GraphQL answered HTTP {response.status_code}: {response.text[:2000]}")
        body = response.json()
        if body.get("errors"):
            raise self.fail(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def sensors(self) -> dict[str, dict]:
        data = self.graphql(
            _SENSORS_QUERY, {"selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}}
        )["sensorsOrError"]
        if data["__typename"] != "Sensors":
            raise self.fail(f"sensorsOrError: {data}")
        return {sensor["name"]: sensor["sensorState"] for sensor in data["results"]}

    def snapshot(self) -> Snapshot:
        data = self.graphql(_SNAPSHOT_QUERY)
        for name in ("runsOrError", "partitionBackfillsOrError", "assetsOrError"):
            if data[name]["__typename"] == "PythonError":
                raise self.fail(f"{name}: {data[name]['message']}")
        events = [
            Materialization(
                asset="/".join(node["key"]["path"]),
                partition=event["partition"],
                run_id=event["runId"],
                timestamp=int(event["timestamp"]) / 1000,
            )
            for node in data["assetsOrError"]["nodes"]
            for event in node["assetMaterializations"]
        ]
        return Snapshot(
            runs=data["runsOrError"]["results"],
            backfills=data["partitionBackfillsOrError"]["results"],
            materializations=events,
        )

    def latest_metadata_by_partition(self, asset: str) -> dict[str, tuple[str, dict]]:
        """{partition: (run id, {label: int or path})} of each partition's latest materialization."""
        data = self.graphql(_MATERIALIZATION_METADATA_QUERY, {"key": {"path": [asset]}})
        latest: dict[str, tuple[str, dict]] = {}
        for event in data["assetOrError"]["assetMaterializations"]:
            entries = {e["label"]: e.get("intValue", e.get("path")) for e in event["metadataEntries"]}
            latest.setdefault(event["partition"], (event["runId"], entries))
        return latest

    def partition_keys(self, asset: str) -> list[str]:
        query = "query Keys($key: [AssetKeyInput!]) { assetNodes(assetKeys: $key) { partitionKeys } }"
        nodes = self.graphql(query, {"key": [{"path": [asset]}]})["assetNodes"]
        return list(nodes[0]["partitionKeys"]) if nodes else []

    def run_errors(self, run_id: str) -> list[str]:
        data = self.graphql(_RUN_ERRORS_QUERY, {"runId": run_id})["logsForRun"]
        messages = []
        for event in data.get("events") or []:
            error = (event.get("error") or {}).get("message")
            if event["__typename"] == "ExecutionStepFailureEvent":
                messages.append(f"step {event['stepKey']}: {error}")
            elif event["__typename"] == "RunFailureEvent":
                messages.append(f"run: {event['message']}")
            elif event["__typename"] == "EngineEvent" and error:
                messages.append(f"engine: {event['message']}: {error}")
        return messages

    def launch_backfill(self, assets: list[str], partitions: list[str], title: str) -> str:
        params = {
            "assetSelection": [{"path": [asset]} for asset in assets],
            "partitionNames": partitions,
            "title": title,
        }
        result = self.graphql(_LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise self.fail(f"launchPartitionBackfill failed: {result}")
        return result["backfillId"]

    def launch_job(self, job: str, run_config: Mapping[str, Any]) -> str:
        params = {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job},
            "runConfigData": dict(run_config),
        }
        result = self.graphql(_LAUNCH_RUN, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise self.fail(f"launchRun failed: {result}")
        return result["run"]["runId"]

    def backfills_tagged(self, key: str) -> list[dict]:
        data = self.graphql(_BACKFILLS_WITH_TAGS)["partitionBackfillsOrError"]
        if data["__typename"] != "PartitionBackfills":
            raise self.fail(f"partitionBackfillsOrError: {data}")
        return [b for b in data["results"] if any(tag["key"] == key for tag in b["tags"])]

    def wait_for_run(self, run_id: str, timeout: float = 120.0) -> dict:
        found: dict[str, dict] = {}

        def check() -> tuple[bool, str]:
            (run,) = [run for run in self.snapshot().runs if run["runId"] == run_id] or [{"status": "?"}]
            found["run"] = run
            if run["status"] in BAD_RUNS:
                raise self.fail(f"run {run_id} {run['status']}: {self.run_errors(run_id)}")
            return run["status"] == "SUCCESS", str(run)

        self.poll(f"run {run_id} to succeed", check, timeout)
        return found["run"]

    def backfill(self, backfill_id: str) -> dict:
        data = self.graphql(_BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
        if data["__typename"] != "PartitionBackfill":
            raise self.fail(f"partitionBackfillOrError: {data}")
        return data

    # -- waiting ----------------------------------------------------------------------------------

    def poll(self, what: str, check: Callable[[], tuple[bool, str]], timeout: float, every: float = 2.0):
        """Call `check` until it says done; it returns (done, what it saw) and may raise to fail fast."""
        deadline = time.monotonic() + timeout
        seen = "nothing yet"
        while time.monotonic() < deadline:
            done, seen = check()
            if done:
                return
            time.sleep(every)
        raise self.fail(f"timed out after {timeout:.0f}s waiting for {what}; last seen:\n{seen}")

    def raise_on_failures(self, snapshot: Snapshot, tolerated: Collection[str] = ()) -> None:
        """Fail on any failed run or backfill, except the runs in `tolerated` (a test's own doing)."""
        bad_runs = [run for run in snapshot.bad_runs() if run["runId"] not in tolerated]
        bad_backfills = snapshot.bad_backfills()
        if not bad_runs and not bad_backfills:
            return
        details = [
            f"run {run['runId']} {run['status']}: " + " | ".join(self.run_errors(run["runId"]) or ["?"])
            for run in bad_runs
        ]
        details += [f"backfill {backfill['id']} {backfill['status']}" for backfill in bad_backfills]
        raise self.fail("a run or backfill failed:\n" + "\n".join(details) + "\n" + snapshot.describe())

    def wait_until_settled(
        self,
        expected: Mapping[str, set[str | None]],
        last: str,
        after: Iterable[str] = (),
        timeout: float = 360.0,
        quiet: float = 12.0,
        tolerated: Collection[str] = (),
    ) -> Snapshot:
        """Until every expected (asset, partition) is materialized, `last` is newer than each asset in
        `after`, nothing is queued, running or waiting in a backfill, and nothing changed for `quiet`
        seconds (several sensor ticks). Fails at once if a run or backfill fails."""
        after = tuple(after)
        state: dict[str, Any] = {"signature": None, "since": time.monotonic()}

        def check() -> tuple[bool, str]:
            snapshot = self.snapshot()
            self.raise_on_failures(snapshot, tolerated)
            signature = snapshot.signature()
            if signature != state["signature"]:
                state["signature"], state["since"] = signature, time.monotonic()
            missing = snapshot.missing(expected)
            newest_last = snapshot.latest(last)
            stale = [
                asset for asset in after if newest_last is None or (snapshot.latest(asset) or 0) > newest_last
            ]
            busy = snapshot.active_runs() or snapshot.active_backfills()
            quiet_for = time.monotonic() - state["since"]
            done = not missing and not stale and not busy and quiet_for >= quiet
            seen = (
                f"missing={missing} {last} older than {stale} busy={bool(busy)} "
                f"quiet for {quiet_for:.0f}s\n{snapshot.describe()}"
            )
            return done, seen

        self.poll("the pipeline to settle", check, timeout)
        return self.snapshot()

    def wait_for_backfill(self, backfill_id: str, timeout: float = 180.0) -> dict:
        result: dict[str, dict] = {}

        def check() -> tuple[bool, str]:
            backfill = self.backfill(backfill_id)
            result["backfill"] = backfill
            if backfill["status"] in BAD_BACKFILLS or any(
                run["status"] in BAD_RUNS for run in backfill["runs"]
            ):
                errors = [
                    f"run {run['runId']} {run['status']}: {self.run_errors(run['runId'])}"
                    for run in backfill["runs"]
                    if run["status"] in BAD_RUNS
                ]
                raise self.fail(f"backfill {backfill_id} failed: {backfill}\n" + "\n".join(errors))
            return backfill["status"] == "COMPLETED_SUCCESS", str(backfill)

        self.poll(f"backfill {backfill_id} to complete", check, timeout)
        return result["backfill"]
