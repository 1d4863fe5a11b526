"""The configuration contract (README, "Configuration"): environment variables with defaults that run on a laptop.

Every setting is declared once, as a field of a settings class with its variable, default, parser and
meaning (`env_setting`); reading the environment (`from_environment`), the README's table and the resources
built from the settings all follow that one declaration. The environment is read once, when the code
location loads (`definitions.py`); no module reads it at import.

Relative defaults resolve against the working directory, so `dagster dev` and the demo command, both
started from the repository root, read and write the same `./data` folder.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MATCH_STRATEGIES = ("nearest", "session_forward")
ANALYZERS = ("auto", "gemini", "local", "import")
KEEP_AUDIO, PURGE_AUDIO = "keep", "purge_after_analysis"
AUDIO_RETENTION = (KEEP_AUDIO, PURGE_AUDIO)
# How a run executes its steps: in subprocesses (laptop default), in the run's own process (Celery run
# workers: the worker slot is the unit of parallelism), as Celery tasks, or as Kubernetes jobs.
EXECUTORS = ("multiprocess", "in_process", "celery", "k8s")


def text(value: str) -> str:
    return value


def positive_int(value: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise ValueError("must be a positive whole number")
    return int(value)


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("is not a number") from None
    if not number > 0:
        raise ValueError("must be positive")
    return number


def flag(value: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError("must be true or false")
    return value.lower() in ("true", "1", "yes")


def is_set(value: str) -> bool:
    """For secrets: only whether the variable is there. The secret itself reaches its resource as a Dagster
    `EnvVar`, so it is never shown in the UI, logs or metadata."""
    return bool(value)


def env_setting(
    variable: str,
    default: Any,
    meaning: str,
    parse: Callable[[str], Any] = text,
    choices: tuple[str, ...] | None = None,
    shown_default: str | None = None,
):
    """A settings field read from `variable` (unset or blank: `default`), parsed and checked."""
    return dataclasses.field(
        default=default,
        metadata={
            "variable": variable,
            "meaning": meaning,
            "parse": parse,
            "choices": choices,
            "shown_default": shown_default,
        },
    )


def from_environment(cls, environ: Mapping[str, str] | None = None):
    """An instance of a settings class with each declared field read from its variable."""
    env = os.environ if environ is None else environ
    values = {}
    for field in dataclasses.fields(cls):
        declared = field.metadata
        raw = env.get(declared["variable"], "").strip()
        if declared["parse"] is is_set:
            values[field.name] = bool(raw)
        elif raw:
            try:
                values[field.name] = declared["parse"](raw)
            except ValueError as err:
                raise ValueError(f"{declared['variable']}={raw!r} {err}") from None
    return cls(**values)


def check_choices(settings) -> None:
    for field in dataclasses.fields(settings):
        allowed, value = field.metadata["choices"], getattr(settings, field.name)
        if allowed and value not in allowed:
            raise ValueError(f"{field.metadata['variable']}={value!r} is not one of: {', '.join(allowed)}")


def settings_table(*classes) -> str:
    """The README's configuration table, from the declarations."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for cls in classes:
        for field in dataclasses.fields(cls):
            declared = field.metadata
            shown = declared["shown_default"] or (
                "unset" if field.default in (None, False) else f"`{field.default}`"
            )
            rows.append(f"| `{declared['variable']}` | {shown} | {declared['meaning']} |")
    return "\n".join(rows)


@dataclass(frozen=True)
class Settings:
    storage_url: str = env_setting(
        "ENGAGEMENT_STORAGE_URL", "./data/warehouse", "where assets persist: a folder or `s3://bucket/prefix`"
    )
    landing_url: str = env_setting(
        "ENGAGEMENT_LANDING_URL",
        "./data/landing",
        "drops under `telemetry/`, sessions under `sessions/` (folder or `s3://…`)",
    )
    audio_source_url: str = env_setting(
        "AUDIO_SOURCE_URL",
        "./data/landing/audio/all-prod-storage",
        "the bucket the `audio_link` keys live in (folder or `s3://bucket[/prefix]`)",
    )
    gemini_api_key_set: bool = env_setting(
        "GEMINI_API_KEY",
        False,
        "enables the Gemini analyzer; passed as a Dagster `EnvVar`, never shown or stored",
        parse=is_set,
    )
    gemini_model: str = env_setting(
        "GEMINI_MODEL", "gemini-2.5-flash-lite", "model name (`gemini-2.0-flash-lite` is retired)"
    )
    gemini_base_url: str | None = env_setting(
        "GEMINI_BASE_URL", None, "alternative endpoint (a proxy, or a local server in tests)"
    )
    # A conservative default that fits the free tier; paid projects raise it (limits are per project).
    gemini_rpm: int = env_setting(
        "GEMINI_RPM",
        60,
        "requests per minute (limits are per Google Cloud project; the free tier is lower, paid tiers far higher)",
        parse=positive_int,
    )
    gemini_concurrency: int = env_setting(
        "GEMINI_CONCURRENCY", 8, "requests in flight at once", parse=positive_int
    )
    gemini_max_usd_per_run: float | None = env_setting(
        "GEMINI_MAX_USD_PER_RUN",
        None,
        "stop sending once the run's estimated cost would pass this",
        parse=positive_float,
        shown_default="unset (no cap)",
    )
    analyzer: str = env_setting(
        "ENGAGEMENT_ANALYZER",
        "auto",
        "`gemini`, `local`, `import` or `auto` (gemini when a key is set, else local)",
        choices=ANALYZERS,
    )
    match_strategy: str = env_setting(
        "ENGAGEMENT_MATCH_STRATEGY", "nearest", "`nearest` or `session_forward`", choices=MATCH_STRATEGIES
    )
    analysis_import_url: str | None = env_setting(
        "ANALYSIS_IMPORT_URL", None, "earlier analysis results to import (`ENGAGEMENT_ANALYZER=import`)"
    )
    audio_retention: str = env_setting(
        "ENGAGEMENT_AUDIO_RETENTION", KEEP_AUDIO, "`keep` or `purge_after_analysis`", choices=AUDIO_RETENTION
    )
    # Per-learner CPU stages handle a whole batch in one pass, so a backfill over thousands of learners
    # launches a few runs instead of paying run start-up once per learner.
    learners_per_run: int = env_setting(
        "ENGAGEMENT_LEARNERS_PER_RUN",
        1000,
        "learners per run of the CPU stages (backfills and the sessions refresh)",
        parse=positive_int,
    )
    sensor_interval_seconds: int = env_setting(
        "ENGAGEMENT_SENSOR_INTERVAL_SECONDS",
        30,
        "how often the sessions, NocoDB and automation sensors look (the drop sensor at most every 10 s, "
        "the refresh sensors every 5 s)",
        parse=positive_int,
    )
    executor: str = env_setting(
        "ENGAGEMENT_EXECUTOR",
        "multiprocess",
        "how a run executes its steps: `multiprocess`, `in_process`, `celery` or `k8s` (production profile)",
        choices=EXECUTORS,
    )

    def __post_init__(self) -> None:
        check_choices(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return from_environment(cls, environ)

    @property
    def resolved_analyzer(self) -> str:
        """`auto` means Gemini when a key is set, else the local analyzer."""
        if self.analyzer == "auto":
            return "gemini" if self.gemini_api_key_set else "local"
        return self.analyzer
