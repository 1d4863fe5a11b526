"""The cohorts group as Dagster definitions."""

from __future__ import annotations

import dagster as dg

from engagement_assets.cohorts.assets import COHORT_ASSETS


def build_cohort_definitions() -> dg.Definitions:
    """Learner profiles and the cohort comparison (which follow the phase-level table by automation)."""
    return dg.Definitions(assets=COHORT_ASSETS)
