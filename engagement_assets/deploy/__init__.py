"""Production deployment: the instance profile (PostgreSQL, queued runs, Celery run workers) and the Celery
application the workers run. `python3 -m engagement_assets.deploy` prints where the profile is."""

from __future__ import annotations

from pathlib import Path

PRODUCTION_INSTANCE = Path(__file__).parent / "production" / "dagster.yaml"
