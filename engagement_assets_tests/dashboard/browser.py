"""Debian's Chromium, headless, for the tests of what a person looks at: installed by the test set-up when
the machine does not have it (as root, from Debian's packages)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000")


def chromium_binary() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(
            "Debian's chromium is not installed and cannot be installed here (needs root and apt-get)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    installed = subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], env=env, capture_output=True)
    if installed.returncode:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium"], env=env, capture_output=True, check=True
        )
    return shutil.which("chromium")


def rendered_dom(chromium: str, page: Path) -> str:
    """The page's DOM after its scripts ran."""
    done = subprocess.run(
        [chromium, *FLAGS, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def screenshot(chromium: str, page: Path, target: Path, size: str = "1300,3400") -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [chromium, *FLAGS, f"--window-size={size}", f"--screenshot={target}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return target
