"""Stage 5 wiring: per-response audio analysis, from the configured analyzer."""

import dagster as dg
import pandas as pd

from engagement_assets.analysis.importer import AnalysisImportError, imported_analysis, read_imported_analysis
from engagement_assets.platform.metadata import counts_table, preview
from engagement_assets.platform.partitions import learner_batches, learners_of, users
from engagement_assets.platform.resources import PipelineResource
from engagement_assets.storage.store import read_url


@dg.asset(
    partitions_def=users,
    backfill_policy=learner_batches,
    group_name="analysis",
    kinds={"parquet"},
)
def audio_analysis(
    context: dg.AssetExecutionContext, user_responses: dict[str, pd.DataFrame], pipeline: PipelineResource
) -> dg.MaterializeResult[dict]:
    """How each spoken answer sounded: EQ and engagement scores (0-100), dominant emotion, engagement
    state, pronunciation accuracy and audio quality, one row per response, with the analyzer, model,
    prompt version and a status (`analysed`, `failed` with the reason, `not_found`)."""
    if pipeline.analyzer != "import":
        raise dg.Failure(
            description=(
                f"ENGAGEMENT_ANALYZER={pipeline.analyzer!r}: the model and local analyzers arrive with stage 5; "
                "until then set ENGAGEMENT_ANALYZER=import and ANALYSIS_IMPORT_URL to earlier results"
            )
        )
    imported = _read_import(pipeline.analysis_import_url)
    frames = {
        learner: imported_analysis(user_responses[learner], imported) for learner in learners_of(context)
    }
    combined = pd.concat(frames.values(), ignore_index=True)
    status = combined["status"].value_counts().to_dict()
    return dg.MaterializeResult(
        value=frames,
        metadata={
            "dagster/row_count": len(combined),
            "analyzer": "import",
            "source": dg.MetadataValue.path(imported.source),
            "by_status": counts_table(status, "status"),
            "duplicate_import_rows_ignored": imported.duplicates,
            "preview": preview(combined),
        },
    )


def _read_import(url: str | None):
    if not url:
        raise dg.Failure(
            description="ENGAGEMENT_ANALYZER=import needs ANALYSIS_IMPORT_URL (a CSV path or s3:// URL)"
        )
    try:
        return read_imported_analysis(read_url(url), url)
    except (FileNotFoundError, AnalysisImportError) as err:
        raise dg.Failure(description=f"cannot import analysis: {err}") from None
