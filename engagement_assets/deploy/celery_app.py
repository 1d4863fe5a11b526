"""The Celery application on the worker machines: dagster-celery's tasks (run a whole run, resume a run
whose worker died, run single steps) on the broker, result backend and queue the production instance names.

    engagement-worker --concurrency 2 --hostname worker1@%h

Each worker also needs DAGSTER_HOME pointing at the production instance and the same ENGAGEMENT_* settings
as the code location, because it loads the code and writes to the same storage.
"""

from __future__ import annotations

import sys

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from engagement_assets.deploy.celery_settings import APP_CONFIG, BACKEND_ENV, BROKER_ENV, QUEUE_ENV, required

app = make_app(
    {
        "broker": required(BROKER_ENV),
        "backend": required(BACKEND_ENV),
        "config_source": {**APP_CONFIG, "task_default_queue": required(QUEUE_ENV)},
    }
)
execute_plan = create_task(app)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)


def main(argv: list[str] | None = None) -> None:
    """`celery worker` on the engagement queue; extra arguments (concurrency, hostname, …) pass through."""
    arguments = sys.argv[1:] if argv is None else argv
    app.worker_main(["worker", "--queues", required(QUEUE_ENV), "--loglevel", "INFO", *arguments])


if __name__ == "__main__":
    main()
