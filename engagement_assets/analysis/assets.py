"""Stage 5 wiring: per-response audio analysis, by the configured analyzer."""

from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from engagement_assets.analysis.analyze import AnalysisReport, GeminiSetup, analyze_responses
from engagement_assets.analysis.batch import BatchStillRunning, GeminiBatchAnalyzer
from engagement_assets.analysis.cache import clip_cache
from engagement_assets.analysis.gemini import clip_analyzer
from engagement_assets.analysis.importer import AnalysisImportError, imported_analysis, read_imported_analysis
from engagement_assets.analysis.schema import ANALYSIS_SCHEMA
from engagement_assets.audio.assets import required_manifest, response_audio
from engagement_assets.audio.copier import PURGED
from engagement_assets.errors import redact
from engagement_assets.platform.metadata import (
    add_partition_metadata,
    batch_metadata,
    counts_table,
    table_metadata,
)
from engagement_assets.platform.partitions import learners_of, network_batches, users
from engagement_assets.platform.pools import GEMINI_POOL
from engagement_assets.platform.progress import Progress
from engagement_assets.platform.resources import GeminiResource, PipelineResource, StoreResource
from engagement_assets.storage import layout
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.store import Store, read_url


class AnalysisConfig(dg.Config):
    mode: Literal["online", "batch"] = Field(
        default="online",
        description=(
            "online: requests paced by GEMINI_RPM/GEMINI_CONCURRENCY, results in minutes. batch: the Gemini "
            "Batch API at half the price, results within 24 h (usually far sooner); for large backfills."
        ),
    )
    batch_poll_seconds: float = Field(default=30.0, gt=0, description="How often batch jobs are polled.")
    batch_max_wait_minutes: float = Field(
        default=60.0,
        gt=0,
        description="How long a run waits for batch jobs; unfinished jobs are collected by the next run.",
    )


@dg.asset(
    partitions_def=users,
    deps=[response_audio],
    backfill_policy=network_batches,
    pool=GEMINI_POOL,
    group_name="analysis",
    kinds={"gemini", "parquet"},
    metadata=table_metadata(ANALYSIS_SCHEMA),
)
def audio_analysis(
    context: dg.AssetExecutionContext,
    config: AnalysisConfig,
    user_responses: dict[str, pd.DataFrame],
    pipeline: PipelineResource,
    gemini: GeminiResource,
    warehouse: StoreResource,
) -> dg.MaterializeResult[dict]:
    """How each spoken answer sounded: EQ and engagement scores (0-100), dominant emotion, engagement
    state, pronunciation accuracy and audio quality, one row per response, with the analyzer (`gemini`,
    `local` heuristics or `import`), model, prompt version, a status (`analysed`, `blank`, `no_audio`,
    `missing_audio`, `download_failed`, `unsupported`, `failed`, `budget`, `not_found`) and the error."""
    learners = learners_of(context)
    if pipeline.analyzer == "import":
        frames, metadata = _imported(learners, user_responses, pipeline)
    else:
        frames, metadata = _analysed(
            learners,
            user_responses,
            _gemini_setup(config, pipeline, gemini, warehouse.store()),
            warehouse.store(),
            Progress(context.log.info, "analysis", unit="clips"),
        )
    combined = pd.concat(frames.values(), ignore_index=True)
    add_partition_metadata(context, {learner: _by_status(frame) for learner, frame in frames.items()})
    metadata.update(learners=len(learners), analyzer=pipeline.analyzer, **_by_status(combined))
    return dg.MaterializeResult(value=frames, metadata=batch_metadata(metadata))


def _by_status(analysis: pd.DataFrame) -> dict:
    return {"by_status": counts_table(analysis["status"].value_counts().to_dict(), "status")}


def _imported(learners, user_responses, pipeline: PipelineResource):
    if not pipeline.analysis_import_url:
        raise dg.Failure(
            description="ENGAGEMENT_ANALYZER=import needs ANALYSIS_IMPORT_URL (a CSV path or s3:// URL)"
        )
    try:
        imported = read_imported_analysis(
            read_url(pipeline.analysis_import_url), pipeline.analysis_import_url
        )
    except (FileNotFoundError, AnalysisImportError) as err:
        raise dg.Failure(description=redact(f"cannot import analysis: {err}")) from None
    frames = {learner: imported_analysis(user_responses[learner], imported) for learner in learners}
    return frames, {
        "source": dg.MetadataValue.path(imported.source),
        "duplicate_import_rows_ignored": imported.duplicates,
    }


def _gemini_setup(config: AnalysisConfig, pipeline: PipelineResource, gemini: GeminiResource, store: Store):
    if pipeline.analyzer != "gemini":
        return None
    if config.mode == "batch":
        analyzer = GeminiBatchAnalyzer(
            gemini.client(),
            gemini.model,
            store,
            config.batch_poll_seconds,
            config.batch_max_wait_minutes * 60,
        )
    else:
        analyzer = clip_analyzer(
            gemini.client(),
            gemini.model,
            rpm=gemini.rpm,
            concurrency=gemini.concurrency,
            window_seconds=gemini.rate_window_seconds,
        )
    return GeminiSetup(analyzer, clip_cache(store), gemini.max_usd_per_run)


def _analysed(learners, user_responses, setup: GeminiSetup | None, store: Store, progress: Progress):
    responses = pd.concat([user_responses[learner] for learner in learners], ignore_index=True)
    manifests = [required_manifest(store, learner) for learner in learners]
    manifest = pd.concat(manifests, ignore_index=True)
    try:
        combined, report = analyze_responses(
            responses, manifest, read_url, setup, _earlier_of_purged(store, learners, manifests), progress
        )
    except BatchStillRunning as err:
        raise dg.Failure(description=redact(str(err))) from None
    frames, offset = {}, 0
    for learner in learners:
        count = len(user_responses[learner])
        frames[learner] = combined.iloc[offset : offset + count].reset_index(drop=True)
        offset += count
    metadata = _report_metadata(report, setup.analyzer.model if setup else None)
    if setup and isinstance(setup.analyzer, GeminiBatchAnalyzer):
        metadata.update(
            batch_jobs_submitted=setup.analyzer.submitted, batch_jobs_resumed=setup.analyzer.resumed
        )
    return frames, metadata


def _earlier_of_purged(
    store: Store, learners: list[str], manifests: list[pd.DataFrame]
) -> pd.DataFrame | None:
    """This asset's stored rows of the learners some of whose clips were purged after their analysis: the
    results those clips keep."""
    keys = [
        key
        for learner, manifest in zip(learners, manifests, strict=True)
        if (manifest["status"] == PURGED).any()
        and store.exists(key := layout.partition_file(audio_analysis.key.path[-1], learner))
    ]
    return read_parquet(store, keys, schema=ANALYSIS_SCHEMA).to_pandas() if keys else None


def _report_metadata(report: AnalysisReport, model: str | None) -> dict:
    metadata = {"seconds": round(report.seconds, 2)}
    if model:
        metadata.update(
            {
                "model": model,
                "model_calls": report.model_calls,
                "cached_results_used": report.cached,
                "rate_limited_429s": report.rate_limited,
                "input_tokens": report.input_tokens,
                "output_tokens": report.output_tokens,
                "estimated_usd_before_sending": round(report.estimated_usd, 6),
                "spent_usd": round(report.spent_usd, 6),
                "checkpoints_written": report.checkpoints,
            }
        )
    return metadata
