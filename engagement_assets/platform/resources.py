"""Resources shared by every stage, built from the environment (SPEC §4)."""

from __future__ import annotations

import dagster as dg

from engagement_assets.platform.io_manager import ParquetIOManager
from engagement_assets.settings import Settings
from engagement_assets.storage.store import Store, open_store


class StoreResource(dg.ConfigurableResource):
    """A folder or `s3://bucket/prefix` the platform reads from or writes to."""

    url: str

    def store(self) -> Store:
        return open_store(self.url)


class PipelineResource(dg.ConfigurableResource):
    """How the stages behave: the matching rule and the audio analyzer."""

    match_strategy: str = "nearest"
    analyzer: str = "auto"
    analysis_import_url: str | None = None

    def setup_for_execution(self, context) -> None:
        Settings(match_strategy=self.match_strategy, analyzer=self.analyzer)  # validates the choices


def build_resources(settings: Settings) -> dict:
    return {
        "io_manager": ParquetIOManager(storage_url=settings.storage_url),
        "warehouse": StoreResource(url=settings.storage_url),
        "landing": StoreResource(url=settings.landing_url),
        "audio_source": StoreResource(url=settings.audio_source_url),
        "pipeline": PipelineResource(
            match_strategy=settings.match_strategy,
            analyzer=settings.analyzer,
            analysis_import_url=settings.analysis_import_url,
        ),
    }
