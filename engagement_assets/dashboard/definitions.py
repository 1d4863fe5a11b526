"""The dashboard group as Dagster definitions."""

from __future__ import annotations

import dagster as dg

from engagement_assets.dashboard.assets import DASHBOARD_ASSETS


def build_dashboard_definitions() -> dg.Definitions:
    """The HTML dashboard, which follows the tables it shows by automation."""
    return dg.Definitions(assets=DASHBOARD_ASSETS)
