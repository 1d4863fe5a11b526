"""The `import` analyzer: analysis results produced earlier, so users keep what they already paid for.

Two layouts are understood: a CSV with the stage-5 metric columns keyed by (`event_mid`, `event_ets`),
or the original system's `merged_with_analysis.csv`, keyed by `audio_link` (a bare key or an s3:// or
https:// URL of the recording). Every response gets one row: `analysed`, `failed` (the imported values
are invalid; `error` says why) or `not_found` (nothing imported for it).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pandas as pd

from engagement_assets.analysis.schema import (
    ANALYSED,
    ANALYSIS_COLUMNS,
    FAILED,
    METRICS,
    NOT_FOUND,
    InvalidAnalysis,
    validated_metrics,
)

ANALYZER = "import"
RESPONSE_KEY = ["event_mid", "event_ets"]
AUDIO_KEY = "audio_link"
_URL_PREFIX = re.compile(r"^(?:s3://[^/]+/|https?://[^/]+/)")


class AnalysisImportError(ValueError):
    pass


@dataclass(frozen=True)
class ImportedAnalysis:
    table: pd.DataFrame  # one row per key, key columns then metrics (and model/prompt_version when given)
    key: list[str]
    source: str
    duplicates: int


def read_imported_analysis(data: bytes, source: str) -> ImportedAnalysis:
    raw = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if set(RESPONSE_KEY) <= set(raw.columns):
        key = RESPONSE_KEY
        raw["event_ets"] = pd.to_datetime(raw["event_ets"], format="mixed").astype("datetime64[ms]")
    elif AUDIO_KEY in raw.columns:
        key = [AUDIO_KEY]
        raw[AUDIO_KEY] = raw[AUDIO_KEY].map(audio_key)
        raw = raw[raw[AUDIO_KEY] != ""]
    else:
        raise AnalysisImportError(
            f"{source}: an analysis import needs the columns event_mid and event_ets, or audio_link "
            f"(the original merged_with_analysis.csv); it has {', '.join(raw.columns)}"
        )
    missing = [column for column in METRICS if column not in raw.columns]
    if missing:
        raise AnalysisImportError(f"{source}: missing analysis column(s) {', '.join(missing)}")
    keep = key + list(METRICS) + [column for column in ("model", "prompt_version") if column in raw.columns]
    unique = raw[keep].drop_duplicates(key, keep="first")
    return ImportedAnalysis(unique.reset_index(drop=True), key, source, len(raw) - len(unique))


def audio_key(link: str) -> str:
    """The object key of a recording, whether given bare or as an s3:// or https:// URL."""
    return _URL_PREFIX.sub("", (link or "").strip())


def imported_analysis(responses: pd.DataFrame, imported: ImportedAnalysis) -> pd.DataFrame:
    """One analysis row per response of `responses` (stage 2 columns), from the imported results."""
    left = responses[["event_mid", "event_ets", AUDIO_KEY]].copy()
    left[AUDIO_KEY] = left[AUDIO_KEY].fillna("").map(audio_key)
    joined = left.merge(imported.table, on=imported.key, how="left", indicator=True)
    rows = [
        _row(record, found == "both")
        for record, found in zip(joined.to_dict("records"), joined["_merge"], strict=True)
    ]
    return analysis_frame(rows)


def _row(record: dict, found: bool) -> dict:
    row = {"event_mid": record["event_mid"], "event_ets": record["event_ets"], "analyzer": ANALYZER}
    row["model"] = record.get("model") or None
    row["prompt_version"] = record.get("prompt_version") or None
    if not found:
        return {**row, "status": NOT_FOUND, "error": "no imported analysis for this response"}
    try:
        return {**row, **validated_metrics(record), "status": ANALYSED, "error": None}
    except InvalidAnalysis as err:
        return {**row, "status": FAILED, "error": str(err)}


def analysis_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as the stage-5 table: every column present, scores as floats, times as ms timestamps."""
    frame = pd.DataFrame(rows, columns=list(ANALYSIS_COLUMNS))
    for column in ("EQ_score", "engagement_score"):
        frame[column] = pd.to_numeric(frame[column]).astype("float64")
    frame["event_ets"] = frame["event_ets"].astype("datetime64[ms]")
    for column in set(ANALYSIS_COLUMNS) - {"EQ_score", "engagement_score", "event_ets"}:
        frame[column] = frame[column].astype("str").where(frame[column].notna(), None)
    return frame
