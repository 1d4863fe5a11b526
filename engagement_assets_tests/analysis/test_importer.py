"""The import analyzer: both file layouts, validation, responses with nothing imported."""

from __future__ import annotations

import pandas as pd
import pytest

from engagement_assets.analysis.importer import (
    AnalysisImportError,
    audio_key,
    imported_analysis,
    read_imported_analysis,
)
from engagement_assets.analysis.schema import ANALYSIS_COLUMNS

T0 = pd.Timestamp("2025-06-08 13:16:23.703")
METRIC_HEADER = (
    "EQ_score,engagement_score,dominant_emotion,engagement_state,pronunciation_accuracy,audio_quality"
)


def responses() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_mid": ["m1", "m2", "m3"],
            "event_ets": pd.Series([T0, T0, T0], dtype="datetime64[ms]"),
            "audio_link": ["ch/a.wav", None, "ch/c.wav"],
        }
    )


def test_keyed_by_response():
    data = f"event_mid,event_ets,{METRIC_HEADER}\nm1,2025-06-08 13:16:23.703,88,16,Sadness,neutral,average,distorted\nm2,2025-06-08 13:16:23.703,140,16,fear,neutral,good,good\n"
    frame = imported_analysis(responses(), read_imported_analysis(data.encode(), "a.csv"))
    assert list(frame.columns) == list(ANALYSIS_COLUMNS)
    assert frame["status"].tolist() == ["analysed", "failed", "not_found"]
    assert frame.loc[0, "dominant_emotion"] == "sadness" and frame.loc[0, "EQ_score"] == 88.0
    assert "EQ_score='140' is not a number in 0-100" in frame.loc[1, "error"] and pd.isna(
        frame.loc[1, "EQ_score"]
    )
    assert (frame["analyzer"] == "import").all()


def test_the_original_merged_with_analysis_keyed_by_audio_link():
    data = (
        f"UserId,audio_link,{METRIC_HEADER}\n"
        f"u,s3://all-prod-storage/ch/a.wav,50,60,happiness,engaged,good,good\n"
        f"u,https://all-prod-storage.s3.ap-south-1.amazonaws.com/ch/c.wav,1,2,anger,disengaged,poor,blank\n"
        f"u,s3://all-prod-storage/ch/a.wav,99,99,fear,engaged,good,good\n"
    )
    imported = read_imported_analysis(data.encode(), "merged_with_analysis.csv")
    assert imported.duplicates == 1
    frame = imported_analysis(responses(), imported)
    assert frame["status"].tolist() == ["analysed", "not_found", "analysed"]
    assert frame["EQ_score"].tolist()[::2] == [50.0, 1.0]


def test_files_without_keys_or_metrics_are_refused_clearly():
    with pytest.raises(AnalysisImportError, match="needs the columns event_mid and event_ets, or audio_link"):
        read_imported_analysis(f"x,{METRIC_HEADER}\n".encode(), "bad.csv")
    with pytest.raises(AnalysisImportError, match=r"missing analysis column.*audio_quality"):
        read_imported_analysis(
            b"audio_link,EQ_score,engagement_score,dominant_emotion,engagement_state,pronunciation_accuracy\n",
            "bad.csv",
        )


@pytest.mark.parametrize(
    ("link", "key"),
    [
        ("ch/a.wav", "ch/a.wav"),
        ("s3://bucket/ch/a.wav", "ch/a.wav"),
        ("https://b.s3.amazonaws.com/ch/a.wav", "ch/a.wav"),
        ("", ""),
    ],
)
def test_audio_keys(link, key):
    assert audio_key(link) == key
