"""What both ends of the Celery broker must agree on: where the broker and result backend are, which queue
the engagement workers listen on, and how tasks are handed out. Read by the worker application, the
`celery` executor and (through the same environment variables) the production instance's run launcher."""

from __future__ import annotations

import os
from collections.abc import Mapping

BROKER_ENV = "ENGAGEMENT_CELERY_BROKER"
BACKEND_ENV = "ENGAGEMENT_CELERY_BACKEND"
QUEUE_ENV = "ENGAGEMENT_CELERY_QUEUE"

APP_CONFIG = {
    # One task per worker slot: a prefetched run would wait behind a long one while another worker idles.
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
    # The daemon's run monitor reads each run's task state from the result backend; a state that expired
    # would read as unknown and the run would be resumed twice, so keep states for longer than any run.
    "result_expires": 7 * 24 * 3600,
}


def required(name: str, environ: Mapping[str, str] | None = None) -> str:
    value = (os.environ if environ is None else environ).get(name, "").strip()
    if not value:
        raise RuntimeError(
            f"{name} is not set: the Celery workers, the production instance and the `celery` executor "
            f"need {BROKER_ENV}, {BACKEND_ENV} and {QUEUE_ENV} (see the README's deployment guide)"
        )
    return value
