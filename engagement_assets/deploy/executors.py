"""How a run executes its steps (ENGAGEMENT_EXECUTOR). The distributed engines are optional installs, so
they are imported only when chosen, with a clear message when missing."""

from __future__ import annotations

import importlib
import multiprocessing

import dagster as dg

from engagement_assets.deploy.celery_settings import APP_CONFIG, BACKEND_ENV, BROKER_ENV, QUEUE_ENV, required

_EXTRA_FOR = {"dagster_celery": "production", "dagster_k8s": "k8s"}


def executor_for(name: str) -> dg.ExecutorDefinition:
    if name == "multiprocess":
        return _multiprocess()
    if name == "in_process":
        return dg.in_process_executor
    if name == "celery":
        # The broker URL may hold a password: the run config keeps only the variable's name.
        return _optional("dagster_celery").celery_executor.configured(
            {
                "broker": {"env": BROKER_ENV},
                "backend": {"env": BACKEND_ENV},
                "config_source": {**APP_CONFIG, "task_default_queue": required(QUEUE_ENV)},
            },
            name="celery",
        )
    if name == "k8s":
        return _optional("dagster_k8s").k8s_job_executor
    raise ValueError(f"unknown executor {name!r}")


def _multiprocess() -> dg.ExecutorDefinition:
    # Steps fork from a server that imported the code location once, instead of each step starting
    # Python and importing it again (seconds per step, most of a small batch's run). Windows has no fork.
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return dg.multiprocess_executor
    return dg.multiprocess_executor.configured({"start_method": {"forkserver": {}}}, name="multiprocess")


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"ENGAGEMENT_EXECUTOR needs {module}: pip install 'engagement-assets[{_EXTRA_FOR[module]}]'"
        ) from error
