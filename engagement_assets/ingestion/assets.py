"""Stage 1 wiring: the landed telemetry file and its cleaned, chunked Parquet form."""

import shutil
import tempfile
import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from engagement_assets.errors import redact
from engagement_assets.ingestion.cleaning import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_QUARANTINE_BYTES,
    clean_drop,
    default_workers,
)
from engagement_assets.ingestion.events import LEARNER_ATTRIBUTES_SCHEMA, RESPONSE_SCHEMA
from engagement_assets.ingestion.records import NotJsonError
from engagement_assets.platform.metadata import counts_table, table_metadata
from engagement_assets.platform.partitions import telemetry_drops
from engagement_assets.platform.progress import Progress
from engagement_assets.platform.resources import StoreResource
from engagement_assets.storage import layout

telemetry_drop = dg.AssetSpec(
    "telemetry_drop",
    partitions_def=telemetry_drops,
    group_name="ingestion",
    kinds={"json"},
    description=(
        "A raw telemetry export as it landed under `<landing>/telemetry/`: a JSON array or JSONL file of "
        "Sunbird ALL storage rows (Mongo or MySQL export), optionally gzip-compressed. One partition per file."
    ),
)


class CleaningConfig(dg.Config):
    chunk_size: int = Field(
        default=DEFAULT_CHUNK_SIZE,
        ge=1,
        description="Input records per chunk; each chunk becomes one Parquet part.",
    )
    workers: int = Field(
        default=0,
        ge=0,
        description=(
            "Parser processes; 0 picks one per core (up to 2) for drops of 256 MB or more, else 1. "
            "Each worker adds about 90 MB of memory."
        ),
    )
    max_quarantine_megabytes: float = Field(
        default=DEFAULT_QUARANTINE_BYTES / 1024 / 1024,
        gt=0,
        description="Largest quarantine file of one drop; past it malformed records are only counted.",
    )


CLEANED, ATTRIBUTES = dg.AssetKey("cleaned_telemetry"), dg.AssetKey("learner_attributes")
SOURCE_VERSION = "source_version"


@dg.multi_asset(
    partitions_def=telemetry_drops,
    deps=[telemetry_drop],
    group_name="ingestion",
    outs={
        CLEANED.path[-1]: dg.AssetOut(
            kinds={"parquet"},
            metadata=table_metadata(RESPONSE_SCHEMA),
            description=(
                "Every scorable English spoken answer (RESPONSE/SPEAK event) in one telemetry drop, one row "
                "per response with its learner, expected sentence, recognised text, accuracy and recording "
                "key, deduplicated within the drop. Stored as one Parquet part per input chunk; malformed "
                "records go to a quarantine file."
            ),
        ),
        ATTRIBUTES.path[-1]: dg.AssetOut(
            kinds={"parquet"},
            metadata=table_metadata(LEARNER_ATTRIBUTES_SCHEMA),
            description=(
                "What one drop's telemetry says about each learner beside their kept answers: device, app "
                "build, school, UDISE code and class, one row per combination seen, with when. "
                "`learner_profiles` reads every drop's rows for cohorts (a device used by several learners "
                "is a shared device)."
            ),
        ),
    },
)
def cleaned_telemetry(
    context: dg.AssetExecutionContext,
    config: CleaningConfig,
    landing: StoreResource,
    warehouse: StoreResource,
):
    """Stage 1: one pass over a landed drop gives its cleaned responses and its learners' attributes."""
    drop = context.partition_key
    source, source_key = landing.store(), layout.telemetry_key(drop)
    workdir = Path(tempfile.mkdtemp(prefix="cleaned-telemetry-"))
    started = time.monotonic()
    try:
        listed = _listed(source, source_key)
        size = listed.size
        with source.open_read(source_key) as stream:
            workers = config.workers or default_workers(size)
            parts, report, quarantine_file, attributes = clean_drop(
                stream,
                drop,
                workdir,
                config.chunk_size,
                workers,
                max_quarantine_bytes=int(config.max_quarantine_megabytes * 1024 * 1024),
                progress=_progress(context, drop, size),
            )
        quarantine_uri = _publish_quarantine(
            warehouse.store(), drop, quarantine_file, bool(report.quarantined)
        )
    except NotJsonError as err:
        shutil.rmtree(workdir, ignore_errors=True)
        raise dg.Failure(description=redact(str(err))) from None
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    seconds = time.monotonic() - started
    metadata = {
        "source": dg.MetadataValue.path(source.uri(source_key)),
        "source_mb": round(size / 1e6, 2),
        # Which version of the file this is: the drop sensor does not clean the same version twice.
        SOURCE_VERSION: listed.version,
        "records": report.records,
        "events": report.events,
        "learners": report.learners,
        "chunks": report.chunks,
        "workers": workers,
        "dropped": sum(report.dropped.values()),
        "dropped_by_reason": counts_table(report.dropped),
        "quarantined": sum(report.quarantined.values()),
        "quarantined_by_reason": counts_table(report.quarantined),
        "quarantined_not_stored": report.quarantine_not_stored,
        "seconds": round(seconds, 2),
        "mb_per_second": round(size / 1e6 / seconds, 1) if seconds else 0.0,
    }
    if quarantine_uri:
        metadata["quarantine"] = dg.MetadataValue.path(quarantine_uri)
        context.log.warning(f"{drop}: {sum(report.quarantined.values())} malformed records quarantined")
    if report.quarantine_not_stored:
        context.log.warning(
            f"{drop}: the quarantine file reached its cap (max_quarantine_megabytes); "
            f"{report.quarantine_not_stored} more malformed records are counted but not stored"
        )
    yield dg.Output(parts, CLEANED.path[-1], metadata=metadata)
    yield dg.Output(attributes, ATTRIBUTES.path[-1], metadata=attributes_metadata(attributes))


def attributes_metadata(attributes) -> dict:
    """What the drop says about its learners, in numbers (this drop only: the partition it describes)."""
    frame = attributes.to_pandas()
    per_device = frame.dropna(subset=["device_id"]).groupby("device_id")["user_id"].nunique()
    builds = (frame["app_id"].fillna("unknown") + " " + frame["app_version"].fillna("")).str.strip()
    return {
        "learners": int(frame["user_id"].nunique()),
        "rows": len(frame),
        "devices": len(per_device),
        "shared_devices": int((per_device > 1).sum()),
        "learners_with_school": int(frame.dropna(subset=["school_name"])["user_id"].nunique()),
        "learners_with_udise_code": int(frame.dropna(subset=["udise_code"])["user_id"].nunique()),
        "learners_by_app_build": counts_table(
            frame.assign(build=builds).groupby("build")["user_id"].nunique().to_dict(), "app build"
        ),
    }


def landed_drops(store) -> list[str]:
    """The telemetry_drops keys of the files landed directly under `telemetry/`."""
    keys = (layout.drop_of_telemetry_key(stored.key) for stored in store.list_files(layout.TELEMETRY_PREFIX))
    return [key for key in keys if key is not None]


def _progress(context: dg.AssetExecutionContext, drop: str, size: int | None):
    progress = Progress(context.log.info, f"cleaning {drop}", unit="records")
    return lambda records, position: progress.reached(records, (position, size) if size else None)


def _listed(store, key: str):
    listed = [stored for stored in store.list_files(key) if stored.key == key]
    if not listed:
        raise dg.Failure(description=f"telemetry drop not found: {store.uri(key)}")
    return listed[0]


def _publish_quarantine(store, drop: str, quarantine_file: Path, any_malformed: bool) -> str | None:
    """Store the drop's quarantine file, or remove a stale one when this run found nothing malformed."""
    key = layout.quarantine_key(drop)
    if not any_malformed:
        store.delete(key)
        return None
    store.put_file(quarantine_file, key)
    return store.uri(key)
