"""The cohorts group as Dagster definitions."""

from __future__ import annotations

import dagster as dg

from engagement_assets.cohorts.assets import COHORT_ASSETS
from engagement_assets.cohorts.jobs import cohort_backfill


def build_cohort_definitions() -> dg.Definitions:
    """Learner profiles and the cohort comparison (which follow the phase-level table by automation), and
    the job that backfills a cohort."""
    return dg.Definitions(assets=COHORT_ASSETS, jobs=[cohort_backfill])
