"""Stage 5: one analysis row per response, from the recording the manifest points at.

Responses without a usable recording get a status and no metrics: `no_audio` (no key), `missing_audio`,
`download_failed`, `unsupported` (not a PCM WAV, e.g. WebM/Opus under a .wav name: never sent to the
model with a false MIME type). Silent clips and clips under 0.2 s are `blank` and never reach a model.
The rest are analysed locally, or by Gemini through the result cache: a clip analysed before costs
nothing, and when a spending cap is set the clips past it are left as `budget` for a later run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from engagement_assets.analysis import local
from engagement_assets.analysis.batch import GeminiBatchAnalyzer
from engagement_assets.analysis.gemini import ANALYZER as GEMINI
from engagement_assets.analysis.gemini import PROMPT_VERSION, SYSTEM_PROMPT, ClipRequest
from engagement_assets.analysis.importer import analysis_frame
from engagement_assets.analysis.pricing import actual_cost, estimated_cost, within_budget
from engagement_assets.analysis.schema import ANALYSED, BUDGET, FAILED, METRICS
from engagement_assets.analysis.signal import SignalFeatures, UnsupportedAudio, signal_features
from engagement_assets.audio import copier
from engagement_assets.platform.gemini_client import GeminiClient
from engagement_assets.platform.progress import Progress
from engagement_assets.platform.result_cache import ResultCache, cache_key

BLANK = "blank"
NO_AUDIO = "no_audio"
MISSING_AUDIO = "missing_audio"
DOWNLOAD_FAILED = "download_failed"
UNSUPPORTED = "unsupported"
_FROM_DOWNLOAD = {copier.NO_AUDIO: NO_AUDIO, copier.MISSING: MISSING_AUDIO, copier.FAILED: DOWNLOAD_FAILED}
PURGED_UNANALYSED = "the recording was purged and no earlier analysis of it is stored"
_SENDABLE_FORMATS = {"wav": "audio/wav"}


@dataclass
class AnalysisReport:
    by_status: Counter = field(default_factory=Counter)
    model_calls: int = 0
    cached: int = 0
    rate_limited: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_usd: float = 0.0
    spent_usd: float = 0.0
    checkpoints: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class GeminiSetup:
    analyzer: GeminiClient | GeminiBatchAnalyzer
    cache: ResultCache
    max_usd: float | None = None


@dataclass
class _Clip:
    row: dict
    load: Callable[[], bytes]
    features: SignalFeatures
    expected_text: str
    sha256: str
    accuracy: float | None


def analyze_responses(
    responses: pd.DataFrame,
    manifest: pd.DataFrame,
    read_clip: Callable[[str], bytes],
    gemini: GeminiSetup | None = None,
    earlier: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, AnalysisReport]:
    """Analysis rows for `responses` (stage 2 columns) given their download `manifest` (stage 4).
    `read_clip(storage_path)` returns a stored clip's bytes; with `gemini` unset the local analyzer runs.
    A clip purged after its analysis keeps its row from `earlier` (the previous analysis), if it has one.
    `progress` is told how many clips there are to analyse and each one done."""
    started = time.monotonic()
    report = AnalysisReport()
    identity = (
        (GEMINI, gemini.analyzer.model, PROMPT_VERSION)
        if gemini
        else (local.ANALYZER, local.MODEL, local.PROMPT_VERSION)
    )
    rows, clips = _triage(responses, manifest, read_clip, identity, _by_response(earlier))
    progress = progress or Progress(lambda line: None, "analysis")
    progress.expect(len(clips))
    if gemini:
        _analyze_with_gemini(clips, gemini, report, progress)
    else:
        for clip in clips:
            clip.row.update(local.local_metrics(clip.features, clip.accuracy), status=ANALYSED)
            progress.advance()
    frame = analysis_frame(rows)
    report.by_status.update(frame["status"].value_counts().to_dict())
    report.seconds = time.monotonic() - started
    return frame, report


def _by_response(analysis: pd.DataFrame | None) -> dict[tuple, dict]:
    if analysis is None:
        return {}
    return {(row["event_mid"], row["event_ets"]): row for row in analysis.to_dict("records")}


def _triage(responses, manifest, read_clip, identity, earlier) -> tuple[list[dict], list[_Clip]]:
    downloads = {(row["event_mid"], row["event_ets"]): row for row in manifest.to_dict("records")}
    analyzer, model, prompt_version = identity
    rows, clips = [], []
    for response in responses.to_dict("records"):
        row = {"event_mid": response["event_mid"], "event_ets": response["event_ets"]}
        row.update(analyzer=analyzer, model=model, prompt_version=prompt_version, error=None)
        rows.append(row)
        response_key = (response["event_mid"], response["event_ets"])
        download = downloads.get(response_key, {"status": NO_AUDIO})
        if download["status"] == copier.PURGED:
            row.update(earlier.get(response_key) or {"status": MISSING_AUDIO, "error": PURGED_UNANALYSED})
            continue
        status = _FROM_DOWNLOAD.get(download["status"])
        if status:
            row.update(status=status, error=download.get("error"))
            continue
        if download["format"] not in _SENDABLE_FORMATS:
            row.update(status=UNSUPPORTED, error=f"{download['format']} recording: only PCM WAV is analysed")
            continue
        path = download["storage_path"]
        try:
            features = signal_features(read_clip(path))
        except UnsupportedAudio as err:
            row.update(status=UNSUPPORTED, error=str(err))
            continue
        except FileNotFoundError:
            row.update(status=MISSING_AUDIO, error="the stored clip is gone; re-run response_audio")
            continue
        if features.blank:
            row.update(
                status=BLANK, audio_quality=BLANK, error="silent" if features.silent else "shorter than 0.2 s"
            )
            continue
        accuracy = response.get("accuracy_percentage")
        clips.append(
            _Clip(
                row,
                lambda path=path: read_clip(path),
                features,
                response.get("original_text") or "",
                download["sha256"],
                accuracy,
            )
        )
    return rows, clips


def _analyze_with_gemini(
    clips: list[_Clip], gemini: GeminiSetup, report: AnalysisReport, progress: Progress
) -> None:
    model = gemini.analyzer.model
    by_key: dict[str, list[_Clip]] = {}
    for clip in clips:
        by_key.setdefault(cache_key(clip.sha256, clip.expected_text, model, PROMPT_VERSION), []).append(clip)
    cached = gemini.cache.lookup(set(by_key))
    for key, hit in cached.items():
        done = by_key.pop(key)
        _update(done, {name: hit[name] for name in METRICS}, status=ANALYSED)
        report.cached += 1
        progress.advance(len(done))
    # Identical clips with the same sentence share one call; the cap is checked before anything is sent.
    pending = list(by_key)
    costs = [_estimate(model, by_key[key][0], gemini.analyzer.price_factor) for key in pending]
    affordable = within_budget(costs, gemini.max_usd)
    report.estimated_usd = sum(costs)
    for key in pending[affordable:]:
        _update(
            by_key[key],
            {},
            status=BUDGET,
            error="not sent: the run's spending cap (GEMINI_MAX_USD_PER_RUN) was reached",
        )

    def record(outcome) -> None:
        report.model_calls += outcome.attempts
        report.rate_limited += outcome.rate_limited
        report.input_tokens += outcome.input_tokens
        report.output_tokens += outcome.output_tokens
        if outcome.metrics:
            gemini.cache.add_outcome(outcome, model, PROMPT_VERSION)
        progress.advance(len(by_key[outcome.key]))

    gemini.analyzer.on_outcome = record
    requests = [
        ClipRequest(key, by_key[key][0].load, "audio/wav", by_key[key][0].expected_text)
        for key in pending[:affordable]
    ]
    try:
        outcomes = gemini.analyzer.analyze(requests)
    finally:
        gemini.cache.flush()
        report.checkpoints = gemini.cache.checkpoints
    for outcome in outcomes:
        if outcome.metrics:
            _update(by_key[outcome.key], outcome.metrics, status=ANALYSED)
        else:
            _update(by_key[outcome.key], {}, status=FAILED, error=outcome.error)
    report.spent_usd = (
        actual_cost(model, report.input_tokens, report.output_tokens) * gemini.analyzer.price_factor
    )


def _estimate(model: str, clip: _Clip, price_factor: float) -> float:
    return (
        estimated_cost(model, clip.features.seconds, len(SYSTEM_PROMPT) + len(clip.expected_text))
        * price_factor
    )


def _update(clips: list[_Clip], values: dict, **fields) -> None:
    for clip in clips:
        clip.row.update(values, **fields)
