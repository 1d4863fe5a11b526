"""Resources shared by every stage, built from the environment (README, "Configuration")."""

from __future__ import annotations

import dagster as dg
from google import genai
from google.genai import types
from pydantic import Field

from engagement_assets.platform.io_manager import ParquetIOManager
from engagement_assets.settings import Settings
from engagement_assets.storage.store import Store, open_store


class StoreResource(dg.ConfigurableResource):
    """A folder or `s3://bucket/prefix` the platform reads from or writes to."""

    url: str

    def store(self) -> Store:
        return open_store(self.url)


class PipelineResource(dg.ConfigurableResource):
    """How the stages behave: the matching rule, the audio analyzer and what happens to clips afterwards."""

    # Every field comes from Settings (build_resources): the defaults live there only.
    match_strategy: str
    analyzer: str = Field(description="The analyzer in use: `auto` already resolved to `gemini` or `local`.")
    analysis_import_url: str | None
    audio_retention: str


class GeminiResource(dg.ConfigurableResource):
    """The Gemini Developer API: model, endpoint and request budget. The key comes from GEMINI_API_KEY."""

    api_key: str | None = Field(description="Set from the GEMINI_API_KEY environment variable.")
    model: str
    base_url: str | None
    rpm: int
    concurrency: int
    timeout_seconds: float = 60.0
    max_usd_per_run: float | None
    rate_window_seconds: float = Field(
        default=60.0, description="The window `rpm` is counted over (tests shorten it)."
    )

    def client(self) -> genai.Client:
        if not self.api_key:
            raise dg.Failure(
                description="the Gemini analyzer needs GEMINI_API_KEY (or use ENGAGEMENT_ANALYZER=local)"
            )
        options = types.HttpOptions(base_url=self.base_url, timeout=int(self.timeout_seconds * 1000))
        if self.base_url:
            options.api_version = "v1beta"
        return genai.Client(api_key=self.api_key, http_options=options)


def build_resources(settings: Settings) -> dict:
    return {
        "io_manager": ParquetIOManager(storage_url=settings.storage_url),
        "warehouse": StoreResource(url=settings.storage_url),
        "landing": StoreResource(url=settings.landing_url),
        "audio_source": StoreResource(url=settings.audio_source_url),
        "pipeline": PipelineResource(
            match_strategy=settings.match_strategy,
            analyzer=settings.resolved_analyzer,
            analysis_import_url=settings.analysis_import_url,
            audio_retention=settings.audio_retention,
        ),
        "gemini": gemini_resource(settings),
    }


def gemini_resource(settings: Settings) -> GeminiResource:
    return GeminiResource(
        api_key=dg.EnvVar("GEMINI_API_KEY") if settings.gemini_api_key_set else None,
        model=settings.gemini_model,
        base_url=settings.gemini_base_url,
        rpm=settings.gemini_rpm,
        concurrency=settings.gemini_concurrency,
        max_usd_per_run=settings.gemini_max_usd_per_run,
    )
