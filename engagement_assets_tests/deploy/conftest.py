"""A production deployment on real servers: PostgreSQL instance storage, the Celery run launcher on Redis,
worker processes, `dagster dev` for the webserver, daemon and sensors, compute logs on the local S3 server."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from engagement_assets_tests.deploy.cluster import CeleryWorkers, production_instance
from engagement_assets_tests.deploy.services import (
    fresh_database,
    instance_environment,
    postgres_problem,
    redis_problem,
    require,
)
from engagement_assets_tests.e2e.server import DagsterServer

WORKERS = ["alpha", "beta"]


@pytest.fixture(scope="module")
def production_services() -> None:
    require("PostgreSQL", postgres_problem())
    require("Redis", redis_problem())


@dataclass
class ProductionDeployment:
    server: DagsterServer
    workers: CeleryWorkers
    env: dict[str, str]


@contextlib.contextmanager
def production_deployment(
    root: Path, pipeline_env: Mapping[str, str], s3_endpoint: str, concurrency: int = 1
) -> Iterator[ProductionDeployment]:
    """Runs on two workers with `concurrency` slots each; the queue admits as many runs as there are slots.
    The daemon checks worker health and frees a dead run's pool slots every 2 s (30 s in the shipped profile),
    so tests see retries quickly."""
    aws = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    logs_bucket = f"logs-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **_keys(aws)).create_bucket(
        Bucket=logs_bucket
    )
    home = root / "dagster_home"
    config = production_instance(
        root / "dagster.production.yaml",
        {
            "run_monitoring": {"poll_interval_seconds": 2, "free_slots_after_run_end_seconds": 2},
            "concurrency": {"runs": {"max_concurrent_runs": len(WORKERS) * concurrency}},
        },
    )
    with fresh_database() as database:
        env = {
            **pipeline_env,
            **instance_environment(database, f"engagement-test-{uuid.uuid4().hex[:8]}"),
            **aws,
            "ENGAGEMENT_EXECUTOR": "in_process",
            "DAGSTER_COMPUTE_LOGS_BUCKET": logs_bucket,
            "DAGSTER_COMPUTE_LOGS_PREFIX": "compute-logs",
        }
        with DagsterServer(home, env, instance_config=config) as server:
            worker_env = {**env, "DAGSTER_HOME": str(home)}
            with CeleryWorkers(root / "workers", worker_env, WORKERS, concurrency) as workers:
                yield ProductionDeployment(server, workers, env)


def _keys(aws: Mapping[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": aws["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": aws["AWS_SECRET_ACCESS_KEY"],
    }
