"""Where everything lives, in platform storage and in the landing area: the one owner of every path.

Platform storage (`ENGAGEMENT_STORAGE_URL`):

    <asset>.parquet                                 an unpartitioned table (phase_level_engagement, ...)
    <asset>/<partition>.parquet                     one file per partition (user_responses, ...)
    <asset>/<partition>/part-NNNNN.parquet          a partition written as parts (cleaned_telemetry)
    <asset>/year=YYYY/month=MM/day=DD/part-NNNNN.parquet   a day partition (the conversation tables)
    recordings/<learner>/<audio_link>               the copied recordings (stage 4)
    quarantine/cleaned_telemetry/<drop>.jsonl       a drop's malformed records
    exports/..., reports/...                        the all-learner CSV and the HTML report
    reports/engagement_model_card.md                the engagement model's card (the model is a table)
    reports/engagement_dashboard.html               the analyst's dashboard (self-contained, offline)
    analysis_cache/, analysis_batches/, categories_cache/   paid-for model answers, pending batch jobs

`<partition>` is the partition key's storage segment (`keys.storage_segment`). Every glob here matches
exactly the partitions of one asset: temporary files end in `.tmp`, and folders being swapped in are
staged under `.staging/` at the storage root, outside every asset folder.

Landing area (`ENGAGEMENT_LANDING_URL`): drops directly under `telemetry/`, and each learner's
lesson-tracking export as `sessions/<learner key>_learnerai_data.csv`.
"""

from __future__ import annotations

from engagement_assets.storage.keys import key_of, storage_segment, text_of_key

PARQUET = ".parquet"
PART_NAME = "part-{index:05d}.parquet"
STAGING_PREFIX = ".staging/"
RECORDINGS_PREFIX = "recordings/"
QUARANTINE_PREFIX = "quarantine/cleaned_telemetry/"
EXPORT_KEY = "exports/phase_level_engagement_full.csv"
MODEL_CARD_KEY = "reports/engagement_model_card.md"
DASHBOARD_KEY = "reports/engagement_dashboard.html"
# Private state of stages, never read as assets: paid-for model answers and batch jobs not yet collected.
ANALYSIS_CACHE_PREFIX = "analysis_cache/"
ANALYSIS_BATCHES_PREFIX = "analysis_batches/"
CATEGORIES_CACHE_PREFIX = "categories_cache/"

TELEMETRY_PREFIX = "telemetry/"
SESSIONS_PREFIX = "sessions/"
SESSIONS_SUFFIX = "_learnerai_data.csv"


def table_file(asset: str) -> str:
    return asset + PARQUET


def partition_file(asset: str, key: str) -> str:
    return f"{asset}/{storage_segment(key)}{PARQUET}"


def partition_folder(asset: str, key: str) -> str:
    return f"{asset}/{storage_segment(key)}/"


def day_folder(asset: str, day: str) -> str:
    """`<asset>/year=YYYY/month=MM/day=DD/` for a day key `YYYY-MM-DD`: the layout query engines prune by."""
    year, month, day_of_month = day.split("-")
    return f"{asset}/year={year}/month={month}/day={day_of_month}/"


def part_name(index: int) -> str:
    return PART_NAME.format(index=index)


def partition_files_glob(asset: str) -> str:
    return f"{asset}/*{PARQUET}"


def partition_parts_glob(asset: str) -> str:
    return f"{asset}/*/*{PARQUET}"


def day_parts_glob(asset: str) -> str:
    return f"{asset}/year=*/month=*/day=*/*{PARQUET}"


def partition_file_keys(store, asset: str) -> list[str]:
    """The stored one-file partitions of `asset`, sorted."""
    return _layout_files(store, asset, depth=1)


def partition_part_keys(store, asset: str) -> list[str]:
    """The stored parts of every partition of a parts asset, sorted."""
    return [stored.key for stored in partition_parts(store, asset)]


def partition_parts(store, asset: str) -> list:
    """The stored parts (`StoredFile`: key, size, time written) of every partition of a parts asset, sorted."""
    return _layout_entries(store, asset, depth=2)


def day_part_keys(store, asset: str) -> list[str]:
    """The stored parts of every day of a day-partitioned asset, sorted."""
    return _layout_files(store, asset, depth=4)


def segment_of_part(part_key: str) -> str:
    """The partition folder a part (`<asset>/<segment>/<part>`) belongs to."""
    return part_key.split("/")[1]


def recordings_folder(learner: str) -> str:
    """Where a learner's copied recordings live (`learner` is their partition key)."""
    return f"{RECORDINGS_PREFIX}{storage_segment(learner)}/"


def quarantine_key(drop: str) -> str:
    return f"{QUARANTINE_PREFIX}{storage_segment(drop)}.jsonl"


def telemetry_key(drop: str) -> str:
    """The landed file a telemetry_drops key stands for."""
    return TELEMETRY_PREFIX + text_of_key(drop)


def drop_of_telemetry_key(key: str) -> str | None:
    """The telemetry_drops key of a landed file, or None for what is not a drop (subfolders, dot-files
    that uploaders use for files still being written)."""
    name = key[len(TELEMETRY_PREFIX) :] if key.startswith(TELEMETRY_PREFIX) else ""
    if not name or "/" in name or name.startswith("."):
        return None
    return key_of(name)


def sessions_key(learner: str) -> str:
    """The lesson-tracking export of a learner (`learner` is their partition key)."""
    return f"{SESSIONS_PREFIX}{storage_segment(learner)}{SESSIONS_SUFFIX}"


def segment_of_sessions_key(key: str) -> str | None:
    """The storage segment of the learner a landed sessions file belongs to (`sessions_key` inverted), or
    None for what is not a learner's export (other names, subfolders, dot-files)."""
    name = key[len(SESSIONS_PREFIX) :] if key.startswith(SESSIONS_PREFIX) else ""
    segment = name[: -len(SESSIONS_SUFFIX)] if name.endswith(SESSIONS_SUFFIX) else ""
    if not segment or "/" in segment or segment.startswith("."):
        return None
    return segment


def _layout_files(store, asset: str, depth: int) -> list[str]:
    return [stored.key for stored in _layout_entries(store, asset, depth)]


def _layout_entries(store, asset: str, depth: int) -> list:
    """Stored files `<asset>/<depth segments>` ending in `.parquet`, none of them hidden."""
    found = []
    for stored in store.list_files(asset + "/"):
        segments = stored.key.split("/")
        if (
            len(segments) == depth + 1
            and stored.key.endswith(PARQUET)
            and not any(segment.startswith(".") for segment in segments)
        ):
            found.append(stored)
    return found
