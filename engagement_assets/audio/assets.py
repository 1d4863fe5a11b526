"""Stage 4 wiring: each response's recording copied into platform storage, with a manifest."""

import time

import dagster as dg
import pandas as pd
from botocore.config import Config
from pydantic import Field

from engagement_assets.audio.copier import (
    FAILED,
    MANIFEST_COLUMNS,
    MANIFEST_SCHEMA,
    MISSING,
    NO_AUDIO,
    STATUSES,
    STORED,
    AudioCopier,
    Clip,
    CopyPolicy,
    Known,
)
from engagement_assets.platform.checks import learner_check, learner_check_evaluations
from engagement_assets.platform.metadata import (
    add_partition_metadata,
    batch_metadata,
    counts_table,
    preview,
    table_metadata,
)
from engagement_assets.platform.partitions import learners_of, network_batches, users
from engagement_assets.platform.pools import AUDIO_DOWNLOAD_POOL
from engagement_assets.platform.progress import Progress
from engagement_assets.platform.resources import PipelineResource, StoreResource
from engagement_assets.retention.retention import purged_links
from engagement_assets.settings import PURGE_AUDIO
from engagement_assets.storage import layout
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.s3 import s3_client
from engagement_assets.storage.store import Store, open_store

FAILURE_RATE_CHECK = "download_failure_rate"
ASSET = "response_audio"


class AudioDownloadConfig(dg.Config):
    # The defaults are the copier's own (CopyPolicy), declared once there.
    workers: int = Field(
        default=CopyPolicy.workers,
        ge=1,
        le=256,
        description="Concurrent downloads, shared by all learners of a run.",
    )
    attempts: int = Field(
        default=CopyPolicy.attempts,
        ge=1,
        description="Tries per clip for transient faults (5xx, timeouts, resets).",
    )
    timeout_seconds: float = Field(
        default=CopyPolicy.timeout_seconds, gt=0, description="Longest one clip's download may take."
    )
    max_clip_megabytes: float = Field(
        default=CopyPolicy.max_clip_megabytes, gt=0, description="Larger clips are refused (status failed)."
    )
    warn_failure_rate: float = Field(
        default=0.05, ge=0, le=1, description="Share of failed clips above which the check warns."
    )


@dg.asset(
    partitions_def=users,
    backfill_policy=network_batches,
    pool=AUDIO_DOWNLOAD_POOL,
    group_name="audio",
    kinds={"s3", "parquet"},
    metadata=table_metadata(MANIFEST_SCHEMA),
    check_specs=[
        learner_check(
            FAILURE_RATE_CHECK, ASSET, "Share of the learner's recordings that could not be copied."
        )
    ],
)
def response_audio(
    context: dg.AssetExecutionContext,
    config: AudioDownloadConfig,
    user_responses: dict[str, pd.DataFrame],
    warehouse: StoreResource,
    audio_source: StoreResource,
    pipeline: PipelineResource,
):
    """Each response's recording copied from the audio bucket into platform storage under
    `recordings/<learner>/<audio_link>`, and this manifest: one row per response with the stored path,
    size, sha256, real format (WAV, or WebM under a .wav name) and a status (`stored`, `skipped_existing`,
    `missing`, `failed` with the error, `no_audio`, or `purged`: deleted by recording_retention after its
    analysis, and not fetched again while ENGAGEMENT_AUDIO_RETENTION says purge)."""
    destination = warehouse.store()
    policy = CopyPolicy(
        workers=config.workers,
        attempts=config.attempts,
        timeout_seconds=config.timeout_seconds,
        max_clip_megabytes=config.max_clip_megabytes,
    )
    copier = AudioCopier(_source(audio_source.url, policy), destination, policy)
    learners = learners_of(context)
    clips = [
        Clip(
            row.event_mid,
            row.event_ets,
            row.audio_link if isinstance(row.audio_link, str) else None,
            layout.recordings_folder(learner).rstrip("/"),
        )
        for learner in learners
        for row in user_responses[learner].itertuples()
    ]
    started = time.monotonic()
    progress = Progress(context.log.info, "copying recordings", total=len(clips), unit="clips")
    rows = copier.copy_all(
        clips, _known(destination, learners, pipeline.audio_retention == PURGE_AUDIO), progress.advance
    )
    seconds = time.monotonic() - started
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    manifest["bytes"] = manifest["bytes"].astype("Int64")
    frames, offset = {}, 0
    for learner in learners:
        count = len(user_responses[learner])
        frames[learner] = manifest.iloc[offset : offset + count].reset_index(drop=True)
        offset += count
    add_partition_metadata(context, {learner: _described(frame) for learner, frame in frames.items()})
    summary, by_status = _described(manifest), _status_counts(manifest)
    with_link = len(manifest) - by_status[NO_AUDIO]
    yield dg.MaterializeResult(
        value=frames,
        metadata=batch_metadata(
            {
                "learners": len(learners),
                "clips": len(manifest),
                **summary,
                "seconds": round(seconds, 2),
                "clips_per_second": round(with_link / seconds, 1) if seconds else 0.0,
                "workers": policy.workers,
            }
        ),
    )
    yield from learner_check_evaluations(
        context,
        {learner: [_failure_check(frame, config.warn_failure_rate)] for learner, frame in frames.items()},
    )


def _failure_check(manifest: pd.DataFrame, threshold: float) -> dg.AssetCheckResult:
    rate = _described(manifest)["failure_rate"]
    return dg.AssetCheckResult(
        check_name=FAILURE_RATE_CHECK,
        passed=rate <= threshold,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "failure_rate": round(rate, 4),
            "threshold": threshold,
            "failed": _status_counts(manifest)[FAILED],
        },
    )


def _source(url: str, policy: CopyPolicy) -> Store:
    # dagster-aws's S3Resource cannot set timeouts or the connection pool size, which the worker pool
    # needs; botocore's own retries are off because the copier retries with backoff and jitter itself.
    config = Config(
        connect_timeout=min(10.0, policy.timeout_seconds),
        read_timeout=policy.timeout_seconds,
        max_pool_connections=policy.workers + 4,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    return open_store(url, s3_client(config))


def _status_counts(manifest: pd.DataFrame) -> dict[str, int]:
    return {status: int((manifest["status"] == status).sum()) for status in STATUSES}


def _described(manifest: pd.DataFrame) -> dict:
    """What a manifest (one learner's, or the run's) says about its clips."""
    by_status = _status_counts(manifest)
    with_link = len(manifest) - by_status[NO_AUDIO]
    failures = manifest[manifest["status"].isin([FAILED, MISSING])]
    return {
        "by_status": counts_table(by_status, "status"),
        "formats": counts_table(manifest["format"].value_counts().to_dict(), "format"),
        "failure_rate": round(by_status[FAILED] / with_link, 4) if with_link else 0.0,
        "missing_rate": round(by_status[MISSING] / with_link, 4) if with_link else 0.0,
        "mb_stored": round(float(manifest.loc[manifest["status"] == STORED, "bytes"].sum()) / 1e6, 3),
        "failures": preview(failures[["audio_link", "status", "error", "attempts"]]),
    }


def stored_manifest(store: Store, learner: str) -> pd.DataFrame | None:
    """A learner's manifest as the last run of this asset stored it (None before the first)."""
    key = layout.partition_file(ASSET, learner)
    if not store.exists(key):
        return None
    return read_parquet(store, [key], schema=MANIFEST_SCHEMA).to_pandas()


def required_manifest(store: Store, learner: str) -> pd.DataFrame:
    """A learner's stored manifest, for the stages that read it; a clear failure before the first run."""
    manifest = stored_manifest(store, learner)
    if manifest is None:
        raise dg.Failure(
            description=f"no recordings manifest for learner {learner}: materialize response_audio first"
        )
    return manifest


def _known(destination: Store, learners: list[str], honour_purges: bool) -> dict[str, Known]:
    """Size, hash and format of clips stored by earlier runs, from their manifests, by storage key; with
    `honour_purges`, which of them recording_retention deleted."""
    known = {}
    for learner in learners:
        earlier = stored_manifest(destination, learner)
        if earlier is None:
            continue
        purged = purged_links(destination, learner) if honour_purges else set()
        folder = layout.recordings_folder(learner)
        for row in earlier.dropna(subset=["sha256"]).itertuples():
            known[f"{folder}{row.audio_link}"] = Known(
                int(row.bytes), row.sha256, row.format, purged=row.audio_link in purged
            )
    return known
