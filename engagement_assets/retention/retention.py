"""Which stored recordings stay and which go. These are children's voices: under
`ENGAGEMENT_AUDIO_RETENTION=purge_after_analysis` a clip is deleted from platform storage once its own
analysis is final (a failed or over-budget analysis keeps its clip for the retry); what is known about it
(key, size, hash, format) stays, here and in the recordings manifest.

A purge is honoured later too: `response_audio` does not fetch a purged clip again while the setting
stands, and `audio_analysis` carries the clip's final result over from its earlier run."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from engagement_assets.analysis.schema import UNFINISHED
from engagement_assets.audio.copier import PURGED, SKIPPED_EXISTING, STORED
from engagement_assets.ingestion.events import RESPONSE_KEY
from engagement_assets.storage import layout
from engagement_assets.storage.columns import column
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.store import Store

# The asset's name, which is also its storage folder: response_audio reads the purges from there.
RETENTION_ASSET = "recording_retention"

HELD = "held"
NOT_STORED = "not_stored"
STATES = (HELD, PURGED, NOT_STORED)

RETENTION_SCHEMA = pa.schema(
    [
        *RESPONSE_KEY,
        column("audio_link", pa.string(), "the recording's key in the audio bucket"),
        column("bytes", pa.int64(), "size of the recording as it was stored"),
        column("sha256", pa.string(), "hash of the recording as it was stored"),
        column("state", pa.string(), "held (in platform storage), purged, not_stored (never copied)"),
        column("reason", pa.string(), "why a stored clip is held, or when it was purged"),
    ]
)
RETENTION_COLUMNS = tuple(RETENTION_SCHEMA.names)

KEPT_BY_POLICY = "ENGAGEMENT_AUDIO_RETENTION=keep"
AWAITING_ANALYSIS = "its analysis is not final yet"
PURGED_NOW = "purged: its analysis is final"
PURGED_BEFORE = "purged by an earlier run"


def retention_table(manifest: pd.DataFrame, analysis: pd.DataFrame, purge: bool) -> pd.DataFrame:
    """One row per manifest row: what happens to its clip under the policy (`purge` or keep)."""
    final = _final_responses(analysis)
    rows = []
    for clip in manifest.to_dict("records"):
        state, reason = _decide(clip, (clip["event_mid"], clip["event_ets"]) in final, purge)
        rows.append({name: clip.get(name) for name in RETENTION_COLUMNS} | {"state": state, "reason": reason})
    table = pd.DataFrame(rows, columns=list(RETENTION_COLUMNS))
    table["bytes"] = table["bytes"].astype("Int64")
    return table


def to_delete(table: pd.DataFrame) -> list[str]:
    """The audio links whose clips this decision removes (those purged by an earlier run are gone)."""
    return table.loc[table["reason"] == PURGED_NOW, "audio_link"].tolist()


def purged_links(store: Store, learner: str) -> set[str]:
    """The audio links of a learner's clips that were purged, as the last retention decision stored them."""
    key = layout.partition_file(RETENTION_ASSET, learner)
    if not store.exists(key):
        return set()
    stored = read_parquet(store, [key], schema=RETENTION_SCHEMA).to_pandas()
    return set(stored.loc[stored["state"] == PURGED, "audio_link"])


def _final_responses(analysis: pd.DataFrame) -> set[tuple]:
    done = analysis[~analysis["status"].isin(UNFINISHED)]
    return set(zip(done["event_mid"], done["event_ets"], strict=True))


def _decide(clip: dict, analysis_final: bool, purge: bool) -> tuple[str, str | None]:
    if clip["status"] == PURGED:
        return PURGED, PURGED_BEFORE
    if clip["status"] not in (STORED, SKIPPED_EXISTING):
        return NOT_STORED, None
    if not purge:
        return HELD, KEPT_BY_POLICY
    if not analysis_final:
        return HELD, AWAITING_ANALYSIS
    return PURGED, PURGED_NOW
