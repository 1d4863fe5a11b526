"""The clip analyses already paid for, under `<storage>/analysis_cache/`: keyed by (clip sha256, expected
sentence, model, prompt version), through the platform's result cache."""

from __future__ import annotations

from engagement_assets.analysis.schema import METRICS_SCHEMA
from engagement_assets.platform.result_cache import ResultCache, cache_schema
from engagement_assets.storage.layout import ANALYSIS_CACHE_PREFIX
from engagement_assets.storage.store import Store

CACHE_SCHEMA = cache_schema(METRICS_SCHEMA)


def clip_cache(store: Store, checkpoint_every: int = 25) -> ResultCache:
    return ResultCache(store, ANALYSIS_CACHE_PREFIX, CACHE_SCHEMA, checkpoint_every)
