"""The configuration contract (README, "Configuration"): environment variables with defaults that run on a laptop.

Relative defaults resolve against the working directory, so `dagster dev` and the demo command, both
started from the repository root, read and write the same `./data` folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_STORAGE_URL = "./data/warehouse"
DEFAULT_LANDING_URL = "./data/landing"
DEFAULT_AUDIO_SOURCE_URL = "./data/landing/audio/all-prod-storage"
MATCH_STRATEGIES = ("nearest", "session_forward")
ANALYZERS = ("auto", "gemini", "local", "import")
AUDIO_RETENTION = ("keep", "purge_after_analysis")
# How a run executes its steps: in subprocesses (laptop default), in the run's own process (Celery run
# workers: the worker slot is the unit of parallelism), as Celery tasks, or as Kubernetes jobs.
EXECUTORS = ("multiprocess", "in_process", "celery", "k8s")
DEFAULT_GEMINI_MODEL = "gemini-2.5-flash-lite"
# A conservative default that fits the free tier; paid projects raise it (limits are per project).
DEFAULT_GEMINI_RPM = 60
DEFAULT_GEMINI_CONCURRENCY = 8


@dataclass(frozen=True)
class Settings:
    storage_url: str = DEFAULT_STORAGE_URL
    landing_url: str = DEFAULT_LANDING_URL
    audio_source_url: str = DEFAULT_AUDIO_SOURCE_URL
    match_strategy: str = "nearest"
    analyzer: str = "auto"
    analysis_import_url: str | None = None
    audio_retention: str = "keep"
    gemini_api_key_set: bool = False
    gemini_model: str = DEFAULT_GEMINI_MODEL
    gemini_base_url: str | None = None
    gemini_rpm: int = DEFAULT_GEMINI_RPM
    gemini_concurrency: int = DEFAULT_GEMINI_CONCURRENCY
    gemini_max_usd_per_run: float | None = None
    executor: str = "multiprocess"

    def __post_init__(self) -> None:
        _check_choice("ENGAGEMENT_MATCH_STRATEGY", self.match_strategy, MATCH_STRATEGIES)
        _check_choice("ENGAGEMENT_ANALYZER", self.analyzer, ANALYZERS)
        _check_choice("ENGAGEMENT_AUDIO_RETENTION", self.audio_retention, AUDIO_RETENTION)
        _check_choice("ENGAGEMENT_EXECUTOR", self.executor, EXECUTORS)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str, default: str | None) -> str | None:
            return env.get(name, "").strip() or default

        return cls(
            storage_url=get("ENGAGEMENT_STORAGE_URL", DEFAULT_STORAGE_URL),
            landing_url=get("ENGAGEMENT_LANDING_URL", DEFAULT_LANDING_URL),
            audio_source_url=get("AUDIO_SOURCE_URL", DEFAULT_AUDIO_SOURCE_URL),
            match_strategy=get("ENGAGEMENT_MATCH_STRATEGY", "nearest"),
            analyzer=get("ENGAGEMENT_ANALYZER", "auto"),
            analysis_import_url=get("ANALYSIS_IMPORT_URL", None),
            audio_retention=get("ENGAGEMENT_AUDIO_RETENTION", "keep"),
            # Only whether the key is there: the key itself reaches the resource as an EnvVar, so it is
            # never shown in the UI, logs or metadata.
            gemini_api_key_set=bool(get("GEMINI_API_KEY", None)),
            gemini_model=get("GEMINI_MODEL", DEFAULT_GEMINI_MODEL),
            gemini_base_url=get("GEMINI_BASE_URL", None),
            gemini_rpm=_number("GEMINI_RPM", get("GEMINI_RPM", None), int, DEFAULT_GEMINI_RPM),
            gemini_concurrency=_number(
                "GEMINI_CONCURRENCY", get("GEMINI_CONCURRENCY", None), int, DEFAULT_GEMINI_CONCURRENCY
            ),
            gemini_max_usd_per_run=_number(
                "GEMINI_MAX_USD_PER_RUN", get("GEMINI_MAX_USD_PER_RUN", None), float, None
            ),
            executor=get("ENGAGEMENT_EXECUTOR", "multiprocess"),
        )

    @property
    def resolved_analyzer(self) -> str:
        """`auto` means Gemini when a key is set, else the local analyzer."""
        if self.analyzer == "auto":
            return "gemini" if self.gemini_api_key_set else "local"
        return self.analyzer


def _number(name: str, text: str | None, kind, default):
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{name}={text!r} must be positive")
    return value


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of: {', '.join(allowed)}")
