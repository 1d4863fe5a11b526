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


@dataclass(frozen=True)
class Settings:
    storage_url: str = DEFAULT_STORAGE_URL
    landing_url: str = DEFAULT_LANDING_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str, default: str) -> str:
            return env.get(name, "").strip() or default

        return cls(
            storage_url=get("ENGAGEMENT_STORAGE_URL", DEFAULT_STORAGE_URL),
            landing_url=get("ENGAGEMENT_LANDING_URL", DEFAULT_LANDING_URL),
        )
