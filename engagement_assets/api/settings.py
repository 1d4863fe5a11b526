"""The read API's configuration. Declared once, as in `engagement_assets/settings.py`; where the data is
comes from the platform's and the conversation group's settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engagement_assets.settings import env_setting, from_environment, is_set, positive_int


@dataclass(frozen=True)
class ApiSettings:
    host: str = env_setting("ENGAGEMENT_API_HOST", "127.0.0.1", "address the API listens on")
    port: int = env_setting("ENGAGEMENT_API_PORT", 8000, "port the API listens on", parse=positive_int)
    token_set: bool = env_setting(
        "ENGAGEMENT_API_TOKEN",
        False,
        "the token every request must send (`Authorization: Bearer …`); the API does not start without it",
        parse=is_set,
    )
    max_page_size: int = env_setting(
        "ENGAGEMENT_API_MAX_PAGE_SIZE", 500, "the largest page a request may ask for", parse=positive_int
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        return from_environment(cls, environ)
