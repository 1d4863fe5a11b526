"""Retention wiring: what becomes of each stored recording once it has been analysed."""

import dagster as dg
import pandas as pd

from engagement_assets.audio.assets import required_manifest, response_audio
from engagement_assets.platform.metadata import (
    add_partition_metadata,
    batch_metadata,
    counts_table,
    table_metadata,
)
from engagement_assets.platform.partitions import learners_of, network_batches, users
from engagement_assets.platform.resources import PipelineResource, StoreResource
from engagement_assets.retention.retention import (
    HELD,
    RETENTION_ASSET,
    RETENTION_SCHEMA,
    STATES,
    retention_table,
    to_delete,
)
from engagement_assets.settings import PURGE_AUDIO
from engagement_assets.storage import layout
from engagement_assets.storage.store import Store


@dg.asset(
    name=RETENTION_ASSET,
    partitions_def=users,
    deps=[response_audio],
    backfill_policy=network_batches,
    group_name="audio",
    kinds={"parquet"},
    metadata=table_metadata(RETENTION_SCHEMA),
)
def recording_retention(
    context: dg.AssetExecutionContext,
    audio_analysis: dict[str, pd.DataFrame],
    pipeline: PipelineResource,
    warehouse: StoreResource,
) -> dg.MaterializeResult[dict]:
    """Whether each response's recording is still held in platform storage: `held` (with why: the
    policy keeps clips, or the analysis is not final), `purged` (deleted once its analysis was final,
    under ENGAGEMENT_AUDIO_RETENTION=purge_after_analysis) or `not_stored`; with the clip's size and hash,
    which stay after it is gone. This asset is the one that deletes recordings."""
    store, purge = warehouse.store(), pipeline.audio_retention == PURGE_AUDIO
    frames, deleted = {}, {}
    for learner in learners_of(context):
        frames[learner] = retention_table(required_manifest(store, learner), audio_analysis[learner], purge)
        deleted[learner] = _delete(store, learner, to_delete(frames[learner]))
    add_partition_metadata(
        context, {learner: _described(frame, deleted[learner]) for learner, frame in frames.items()}
    )
    combined = pd.concat(frames.values(), ignore_index=True)
    summary = _described(combined, tuple(map(sum, zip(*deleted.values(), strict=True))))
    return dg.MaterializeResult(
        value=frames,
        metadata=batch_metadata({"learners": len(frames), "policy": pipeline.audio_retention, **summary}),
    )


def _delete(store: Store, learner: str, audio_links: list[str]) -> tuple[int, int]:
    """Deletes the clips that are still there; how many were, and their bytes."""
    folder = layout.recordings_folder(learner)
    present = {stored.key: stored.size for stored in store.list_files(folder)}
    removed = [f"{folder}{link}" for link in audio_links if f"{folder}{link}" in present]
    for key in removed:
        store.delete(key)
    return len(removed), sum(present[key] for key in removed)


def _described(table: pd.DataFrame, deleted: tuple[int, int]) -> dict:
    states = table["state"].value_counts()
    return {
        "by_state": counts_table({state: int(states.get(state, 0)) for state in STATES}, "state"),
        "clips_deleted": deleted[0],
        "mb_deleted": round(deleted[1] / 1e6, 3),
        "mb_held": round(float(table.loc[table["state"] == HELD, "bytes"].sum()) / 1e6, 3),
    }
