"""The retention decision: per clip, from its copy status and whether its own analysis is final."""

from __future__ import annotations

import pandas as pd

from engagement_assets.retention.retention import (
    AWAITING_ANALYSIS,
    KEPT_BY_POLICY,
    PURGED_BEFORE,
    PURGED_NOW,
    retention_table,
    to_delete,
)

MANIFEST = pd.DataFrame(
    {
        "event_mid": ["a", "b", "c", "d", "e", "f"],
        "event_ets": [1, 2, 3, 4, 5, 6],
        "audio_link": ["a.wav", "b.wav", "c.wav", None, "e.wav", "f.wav"],
        "bytes": [10, 20, 30, None, None, 60],
        "sha256": ["ha", "hb", "hc", None, None, "hf"],
        "status": ["stored", "skipped_existing", "stored", "no_audio", "missing", "purged"],
    }
)
# c failed (a retry needs its clip); there is no analysis row for b yet.
ANALYSIS = pd.DataFrame(
    {
        "event_mid": ["a", "c", "d", "e", "f"],
        "event_ets": [1, 3, 4, 5, 6],
        "status": ["analysed", "failed", "no_audio", "missing_audio", "analysed"],
    }
)


def test_a_clip_goes_once_its_own_analysis_is_final():
    table = retention_table(MANIFEST, ANALYSIS, purge=True)
    assert table["state"].tolist() == ["purged", "held", "held", "not_stored", "not_stored", "purged"]
    assert table["reason"].tolist()[:3] == [PURGED_NOW, AWAITING_ANALYSIS, AWAITING_ANALYSIS]
    assert table["reason"].iloc[5] == PURGED_BEFORE
    assert to_delete(table) == ["a.wav"]


def test_what_is_known_about_a_purged_clip_stays():
    table = retention_table(MANIFEST, ANALYSIS, purge=True)
    purged = table[table["state"] == "purged"]
    assert purged["sha256"].tolist() == ["ha", "hf"] and purged["bytes"].tolist() == [10, 60]


def test_the_keep_policy_deletes_nothing():
    table = retention_table(MANIFEST, ANALYSIS, purge=False)
    assert table["state"].tolist()[:3] == ["held"] * 3 and set(table["reason"][:3]) == {KEPT_BY_POLICY}
    assert to_delete(table) == []


def test_an_empty_manifest_gives_an_empty_table_with_every_column():
    table = retention_table(MANIFEST.iloc[:0], ANALYSIS.iloc[:0], purge=True)
    assert table.empty and "state" in table.columns and "reason" in table.columns
