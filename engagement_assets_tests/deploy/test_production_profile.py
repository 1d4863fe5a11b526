"""The shipped production instance profile and the executor choice, without starting a deployment."""

from __future__ import annotations

import sys
import uuid

import dagster as dg
import pytest
import yaml
from dagster._serdes import serialize_value

from engagement_assets.deploy import PRODUCTION_INSTANCE
from engagement_assets.deploy.celery_settings import BROKER_ENV, required
from engagement_assets.deploy.executors import executor_for
from engagement_assets.settings import Settings
from engagement_assets_tests.deploy.services import (
    fresh_database,
    instance_environment,
    postgres_problem,
    require,
)

SECRET_PASSWORD = f"pg-{uuid.uuid4().hex}"
SECRET_BROKER = f"redis://:broker-{uuid.uuid4().hex}@127.0.0.1:6379/0"


def production_env(monkeypatch, database: str) -> None:
    for name, value in {
        **instance_environment(database, "engagement-test"),
        # Trust authentication on the test server ignores the password; it is here to be looked for.
        "DAGSTER_PG_PASSWORD": SECRET_PASSWORD,
        "ENGAGEMENT_CELERY_BROKER": SECRET_BROKER,
        "DAGSTER_COMPUTE_LOGS_BUCKET": "logs",
        "DAGSTER_COMPUTE_LOGS_PREFIX": "compute-logs",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def production_instance(tmp_path, monkeypatch):
    require("PostgreSQL", postgres_problem())
    (tmp_path / "dagster.yaml").write_text(PRODUCTION_INSTANCE.read_text())
    with fresh_database() as database:
        production_env(monkeypatch, database)
        with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
            yield instance


def test_the_profile_is_postgres_storage_queued_runs_celery_workers_and_crash_retries(production_instance):
    instance = production_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert type(instance.run_launcher).__name__ == "CeleryRunLauncher"
    assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_max_resume_run_attempts == 0
    assert instance.run_retries_enabled and instance.run_retries_max_retries >= 1
    assert not instance.run_retries_retry_on_asset_or_op_failure
    concurrency = instance.get_concurrency_config()
    assert concurrency.pool_config.default_pool_limit == 1
    limits = concurrency.run_queue_config.tag_concurrency_limits
    assert {"key": "dagster/sensor_name", "value": "telemetry_drop_sensor", "limit": 2} in limits
    assert {"key": "dagster/sensor_name", "value": "learners_sensor", "limit": 3} in limits
    assert any(limit["key"] == "dagster/backfill" for limit in limits)
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0


def test_secrets_stay_environment_references_in_what_is_stored_and_sent(production_instance):
    instance = production_instance
    # The instance reference travels to every worker in the broker message and into the run records.
    sent = serialize_value(instance.get_ref())
    assert SECRET_PASSWORD not in sent and "broker-" not in sent
    assert "DAGSTER_PG_PASSWORD" in sent and BROKER_ENV in sent

    @dg.asset
    def tiny() -> int:
        return 1

    assert dg.materialize([tiny], instance=instance).success
    with instance.run_storage.connect() as connection:
        dumped = "\n".join(
            str(row)
            for table in ("runs", "run_tags", "event_logs", "instance_info", "kvs")
            for row in connection.exec_driver_sql(f"SELECT * FROM {table}").fetchall()
        )
    assert dumped and SECRET_PASSWORD not in dumped and "broker-" not in dumped


def test_a_missing_variable_is_named(tmp_path, monkeypatch):
    (tmp_path / "dagster.yaml").write_text(PRODUCTION_INSTANCE.read_text())
    production_env(monkeypatch, "unused")
    monkeypatch.delenv("DAGSTER_PG_HOST")
    with pytest.raises(Exception, match="DAGSTER_PG_HOST"):
        dg.DagsterInstance.from_config(str(tmp_path))


def test_the_profile_ships_with_the_package():
    config = yaml.safe_load(PRODUCTION_INSTANCE.read_text())
    assert set(config) >= {"storage", "run_launcher", "run_monitoring", "run_retries", "concurrency"}


@pytest.mark.parametrize(
    ("name", "executor"),
    [("multiprocess", "multiprocess"), ("in_process", "in_process"), ("k8s", "k8s"), ("celery", "celery")],
)
def test_each_executor_choice(monkeypatch, name, executor):
    monkeypatch.setenv("ENGAGEMENT_CELERY_QUEUE", "engagement")
    assert executor_for(name).name == executor


def test_the_celery_executor_keeps_the_broker_as_a_variable_name(monkeypatch):
    monkeypatch.setenv("ENGAGEMENT_CELERY_QUEUE", "engagement")
    # What `configured` fixed, and so what every run's config holds: the name, never the URL.
    config = executor_for("celery").config_schema._config_fn({})
    assert config["broker"] == {"env": BROKER_ENV}


def test_a_missing_engine_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dagster_k8s", None)
    with pytest.raises(ImportError, match=r"engagement-assets\[k8s\]"):
        executor_for("k8s")


def test_unknown_executor_is_refused():
    with pytest.raises(ValueError, match="ENGAGEMENT_EXECUTOR='threads'"):
        Settings.from_env({"ENGAGEMENT_EXECUTOR": "threads"})


def test_celery_variables_are_required_by_name(monkeypatch):
    monkeypatch.delenv("ENGAGEMENT_CELERY_QUEUE", raising=False)
    with pytest.raises(RuntimeError, match="ENGAGEMENT_CELERY_QUEUE is not set"):
        required("ENGAGEMENT_CELERY_QUEUE")
