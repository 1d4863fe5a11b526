"""What both ends of the Celery broker must agree on: where the broker and result backend are, which queue
the engagement workers listen on, and how tasks are handed out. Read by the worker application, the
`celery` executor and (through the same environment variables) the production instance's run launcher."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

# The production instance profile is the one source of the broker settings: its run launcher's config is
# what the workers and the `celery` executor use too, so the two ends cannot drift apart.
PROFILE = Path(__file__).with_name("production") / "dagster.yaml"
_LAUNCHER = yaml.safe_load(PROFILE.read_text())["run_launcher"]["config"]
BROKER_ENV = _LAUNCHER["broker"]["env"]
BACKEND_ENV = _LAUNCHER["backend"]["env"]
QUEUE_ENV = _LAUNCHER["default_queue"]["env"]
APP_CONFIG = dict(_LAUNCHER["config_source"])


def required(name: str, environ: Mapping[str, str] | None = None) -> str:
    value = (os.environ if environ is None else environ).get(name, "").strip()
    if not value:
        raise RuntimeError(
            f"{name} is not set: the Celery workers, the production instance and the `celery` executor "
            f"need {BROKER_ENV}, {BACKEND_ENV} and {QUEUE_ENV} (see the README's deployment guide)"
        )
    return value
