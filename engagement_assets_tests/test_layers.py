"""The package's layers point one way: pure logic imports no Dagster, the platform layer imports no group,
the groups do not import each other, and nothing a deployment runs imports the development support."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "engagement_assets"
ENGAGEMENT_STAGES = {
    "ingestion",
    "responses",
    "matching",
    "audio",
    "analysis",
    "features",
    "retention",
    "automation",
}
# The prediction group reads the engagement outputs as assets, not the stages' code.
GROUPS = {*ENGAGEMENT_STAGES, "conversations", "prediction", "cohorts", "dashboard", "engagement_pipeline"}
# Thin Dagster wiring: what turns the pure modules into assets, resources, sensors and the code location.
WIRING = {
    "definitions.py",
    "engagement_pipeline.py",
    "automation/sensors.py",
    "automation/dead_runs.py",
    "automation/partition_order.py",
    "conversations/definitions.py",
    "prediction/definitions.py",
    "cohorts/definitions.py",
    "cohorts/jobs.py",
    "dashboard/definitions.py",
    "conversations/resources.py",
    "deploy/celery_app.py",
    "deploy/executors.py",
    "platform/checks.py",
    "platform/io_manager.py",
    "platform/metadata.py",
    "platform/partitions.py",
    "platform/resources.py",
}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """The engagement_assets modules and the top-level packages `path` imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def first_part(path: Path) -> str:
    return relative(path).split("/")[0].removesuffix(".py")


def groups_imported(path: Path) -> set[str]:
    return {
        name.split(".")[1]
        for name in imported(path)
        if name.startswith("engagement_assets.") and name.count(".")
    }


@pytest.mark.parametrize("path", modules(), ids=relative)
def test_only_wiring_imports_dagster(path):
    uses_dagster = any(name == "dagster" or name.startswith("dagster.") for name in imported(path))
    wiring = relative(path) in WIRING or path.name == "assets.py" or first_part(path) == "devtools"
    assert wiring or not uses_dagster, f"{relative(path)} is pure logic but imports Dagster"


@pytest.mark.parametrize("path", modules(), ids=relative)
def test_layers_point_one_way(path):
    part, used = first_part(path), groups_imported(path)
    if part != "devtools":
        assert "devtools" not in used, f"{relative(path)} imports the development support"
    if part in ("platform", "storage", "settings", "errors", "__init__"):
        assert not used & GROUPS, f"the platform layer ({relative(path)}) imports {used & GROUPS}"
    if part == "conversations":
        assert not used & ENGAGEMENT_STAGES, f"{relative(path)} imports {used & ENGAGEMENT_STAGES}"
    if part == "prediction":
        others = used & (ENGAGEMENT_STAGES | {"conversations"})
        assert not others, f"{relative(path)} imports {others}"
    if part in ("cohorts", "dashboard"):  # built on the engagement stages' outputs: may read their facts
        # The dashboard shows the cohorts: it may read their facts (the profile attributes), not the reverse.
        allowed = {part, "cohorts"} if part == "dashboard" else {part}
        others = used & {"conversations", "prediction", "cohorts", "dashboard"} - allowed
        assert not others, f"{relative(path)} imports {others}"
    if part in ENGAGEMENT_STAGES:
        assert not used & {"conversations", "prediction", "cohorts"}, (
            f"{relative(path)} imports another group"
        )
