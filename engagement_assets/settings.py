"""The configuration contract (SPEC §4): environment variables with defaults that run on a laptop.

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


@dataclass(frozen=True)
class Settings:
    storage_url: str = DEFAULT_STORAGE_URL
    landing_url: str = DEFAULT_LANDING_URL
    audio_source_url: str = DEFAULT_AUDIO_SOURCE_URL
    match_strategy: str = "nearest"
    analyzer: str = "auto"
    analysis_import_url: str | None = None

    def __post_init__(self) -> None:
        _check_choice("ENGAGEMENT_MATCH_STRATEGY", self.match_strategy, MATCH_STRATEGIES)
        _check_choice("ENGAGEMENT_ANALYZER", self.analyzer, ANALYZERS)

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
        )


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of: {', '.join(allowed)}")
