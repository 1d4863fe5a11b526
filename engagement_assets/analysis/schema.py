"""The per-response analysis every analyzer produces (stage 5), its stored columns, and its validation.

Whatever the source (a model, the local heuristics, an imported file), values are checked field by field:
a score outside 0-100 or a category outside its set makes the row `failed` with the reason in `error`,
never a crash and never a silently kept bad value.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from engagement_assets.ingestion.events import RESPONSE_KEY
from engagement_assets.ingestion.extended_json import number
from engagement_assets.storage.columns import column

SCORES = ("EQ_score", "engagement_score")
CATEGORY_SETS = {
    "dominant_emotion": ("happiness", "sadness", "anger", "fear", "calmness"),
    "engagement_state": ("engaged", "neutral", "disengaged"),
    "pronunciation_accuracy": ("good", "average", "poor"),
    "audio_quality": ("good", "poor", "distorted", "blank"),
}
# The six metrics every analyzer produces, as they are stored (here, in the result cache, in stage 6).
_MEANINGS = {
    "EQ_score": "emotional expressiveness of the voice, 0-100",
    "engagement_score": "how engaged the child sounds, 0-100",
}
METRICS_SCHEMA = pa.schema(
    [column(name, pa.float64(), _MEANINGS[name]) for name in SCORES]
    + [column(name, pa.string(), ", ".join(allowed)) for name, allowed in CATEGORY_SETS.items()]
)
METRICS = tuple(METRICS_SCHEMA.names)
ANALYSIS_SCHEMA = pa.schema(
    [
        *RESPONSE_KEY,
        *METRICS_SCHEMA,
        column("analyzer", pa.string(), "gemini, local (signal heuristics), import"),
        column("model", pa.string(), "the model, or the local heuristic's version"),
        column("prompt_version", pa.string(), "version of the instructions the model was given"),
        column(
            "status",
            pa.string(),
            "analysed, blank, no_audio, missing_audio, download_failed, unsupported, failed, budget, not_found",
        ),
        column("error", pa.string(), "why there are no metrics"),
    ]
)
ANALYSIS_COLUMNS = tuple(ANALYSIS_SCHEMA.names)

ANALYSED = "analysed"
FAILED = "failed"
BUDGET = "budget"
NOT_FOUND = "not_found"
# Statuses a later run could still change; every other status is the clip's final analysis.
UNFINISHED = (FAILED, BUDGET)


class InvalidAnalysis(ValueError):
    pass


def validated_metrics(values: Mapping) -> dict:
    """The six metrics, normalised (scores as floats, categories lower-case); InvalidAnalysis says what is wrong."""
    problems, clean = [], {}
    for name in SCORES:
        score = _score(values.get(name))
        if score is None:
            problems.append(f"{name}={values.get(name)!r} is not a number in 0-100")
        clean[name] = score
    for name, allowed in CATEGORY_SETS.items():
        category = str(values.get(name) or "").strip().lower()
        if category not in allowed:
            problems.append(f"{name}={values.get(name)!r} is not one of {'|'.join(allowed)}")
        clean[name] = category
    if problems:
        raise InvalidAnalysis("; ".join(problems))
    return clean


def _score(value) -> float | None:
    score = number(value)
    return score if score is not None and 0 <= score <= 100 else None
