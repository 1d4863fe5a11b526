"""The PostgreSQL and Redis servers the production tests use, over 127.0.0.1 (CI machines run both).

Elsewhere the tests are skipped with the reason; under CI=true a missing server fails them instead, so a CI
run can never pass by skipping. ENGAGEMENT_TEST_PG_* and ENGAGEMENT_TEST_REDIS_URL point elsewhere."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

PG_HOST = os.environ.get("ENGAGEMENT_TEST_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("ENGAGEMENT_TEST_PG_PORT", "5432")
PG_USER = os.environ.get("ENGAGEMENT_TEST_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("ENGAGEMENT_TEST_PG_PASSWORD", "")
REDIS_URL = os.environ.get("ENGAGEMENT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require(service: str, problem: str | None) -> None:
    if problem is None:
        return
    message = f"{service} is not reachable ({problem}); these tests need a real server on 127.0.0.1"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _admin_connection():
    import psycopg2

    connection = psycopg2.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, dbname="postgres", connect_timeout=3
    )
    connection.autocommit = True  # CREATE/DROP DATABASE refuse to run in a transaction
    return connection


def postgres_problem() -> str | None:
    try:
        _admin_connection().close()
    except Exception as error:
        return f"{type(error).__name__}: {str(error).strip()[:200]}"
    return None


def redis_problem() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database for one deployment, dropped afterwards (connections closed by force)."""
    name = f"engagement_test_{uuid.uuid4().hex[:12]}"
    connection = _admin_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()


def instance_environment(database: str, queue: str) -> dict[str, str]:
    """The production profile's variables for a deployment on these servers."""
    return {
        "DAGSTER_PG_HOST": PG_HOST,
        "DAGSTER_PG_PORT": PG_PORT,
        "DAGSTER_PG_USER": PG_USER,
        "DAGSTER_PG_PASSWORD": PG_PASSWORD,
        "DAGSTER_PG_DB": database,
        "ENGAGEMENT_CELERY_BROKER": REDIS_URL,
        "ENGAGEMENT_CELERY_BACKEND": REDIS_URL,
        "ENGAGEMENT_CELERY_QUEUE": queue,
    }
