"""Celery workers as real subprocesses (`python -m engagement_assets.deploy.celery_app`, the code behind
`engagement-worker`), and the production instance profile with test-speed timings."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from celery import Celery

from engagement_assets.deploy import PRODUCTION_INSTANCE
from engagement_assets_tests.e2e.server import server_environment

_RECEIVED = re.compile(r"Task (?:execute_job|resume_job|execute_plan)\[([0-9a-f-]+)\] received")


def production_instance(path: Path, overrides: Mapping[str, Any]) -> Path:
    """The shipped production profile with `overrides` merged in (only timings and sizes: the storage,
    launcher and limits stay the ones users get)."""
    config = yaml.safe_load(PRODUCTION_INSTANCE.read_text())
    _merge(config, overrides)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _merge(target: dict, overrides: Mapping[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


class CeleryWorkers:
    """Worker processes on one queue, each with its own log; use as a context manager."""

    def __init__(self, folder: Path, env: Mapping[str, str], names: list[str], concurrency: int = 1):
        self.folder = folder
        self.names = names
        self.concurrency = concurrency
        self.env = server_environment(env)
        self.processes: dict[str, subprocess.Popen] = {}
        self.control = Celery(
            broker=env["ENGAGEMENT_CELERY_BROKER"], backend=env["ENGAGEMENT_CELERY_BACKEND"]
        )

    def log(self, name: str) -> Path:
        return self.folder / f"worker-{name}.log"

    def __enter__(self) -> CeleryWorkers:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            self.start(name)
        try:
            self.wait_ready(self.names)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
        self.control.close()

    def start(self, name: str) -> None:
        command = [
            sys.executable,
            "-m",
            "engagement_assets.deploy.celery_app",
            "--concurrency",
            str(self.concurrency),
            "--hostname",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
        with open(self.log(name), "ab") as log:
            self.processes[name] = subprocess.Popen(
                command,
                env=self.env,
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: the pool processes go with it
            )

    def wait_ready(self, names: list[str], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(names)
        while waiting and time.monotonic() < deadline:
            for name in list(waiting):
                process = self.processes[name]
                if process.poll() is not None:
                    raise AssertionError(f"worker {name} exited ({process.returncode}):\n{self.tail(name)}")
                if " ready." in self.log(name).read_text(errors="replace"):
                    waiting.remove(name)
            time.sleep(0.5)
        if waiting:
            raise AssertionError(
                f"workers {waiting} not ready after {timeout:.0f}s:\n{self.tail(waiting[0])}"
            )

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.processes.clear()

    def tail(self, name: str, lines: int = 40) -> str:
        return "\n".join(self.log(name).read_text(errors="replace").splitlines()[-lines:])

    def tasks_received(self) -> dict[str, set[str]]:
        """Celery task ids each worker took from the queue, from its log."""
        return {
            name: set(_RECEIVED.findall(self.log(name).read_text(errors="replace"))) for name in self.names
        }

    def pool_process_of(self, task_id: str, timeout: float = 30.0) -> tuple[str, int]:
        """(worker name, pid) of the pool process executing a task, as the workers report it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            active = self.control.control.inspect(timeout=2.0).active() or {}
            for hostname, tasks in active.items():
                for task in tasks:
                    if task["id"] == task_id:
                        return hostname.split("@", 1)[0], int(task["worker_pid"])
            time.sleep(0.5)
        raise AssertionError(f"no worker reports task {task_id} as active")
