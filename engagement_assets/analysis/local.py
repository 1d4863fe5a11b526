"""The `local` analyzer: runs with no API key, from the signal and the ASR score alone.

It is a documented heuristic, not a model, and every row says so (`analyzer="local"`). The rules:
- audio_quality: `blank` for silence (peak below -50 dBFS) or clips under 0.2 s; `distorted` when more than
  1% of samples are clipped; `poor` when the level is under -40 dBFS or under 10% of the clip is speech;
  else `good`.
- pronunciation_accuracy: from the app's own accuracy score: 80 and up `good`, 50 and up `average`, else `poor`.
- engagement_score (0-100): half how much of the clip is speech (full marks at 60%), half how loud it is
  (-45 dBFS → 0, -15 dBFS → full marks); engagement_state: 60 and up `engaged`, 35 and up `neutral`, else
  `disengaged`.
- EQ_score (0-100): how lively the voice is (spread of the speech level, full marks at 10 dB) blended
  with engagement, 60/40.
- dominant_emotion: clipped shouting `anger`; little speech `fear` (hesitation); a quiet voice `sadness`;
  a lively voice `happiness`; else `calmness`.
"""

from __future__ import annotations

from engagement_assets.analysis.signal import SignalFeatures

ANALYZER = "local"
MODEL = "signal-heuristics"
PROMPT_VERSION = "local-v1"


def local_metrics(features: SignalFeatures, accuracy: float | None) -> dict:
    """The six metrics for a non-blank clip."""
    engagement = round(
        100 * (0.5 * _unit(features.active_share / 0.6) + 0.5 * _unit((features.rms_dbfs + 45) / 30))
    )
    liveliness = _unit(features.level_spread_db / 10)
    return {
        "EQ_score": float(round(100 * (0.6 * liveliness + 0.4 * engagement / 100))),
        "engagement_score": float(engagement),
        "dominant_emotion": _emotion(features, liveliness),
        "engagement_state": "engaged"
        if engagement >= 60
        else "neutral"
        if engagement >= 35
        else "disengaged",
        "pronunciation_accuracy": _pronunciation(accuracy),
        "audio_quality": audio_quality(features),
    }


def audio_quality(features: SignalFeatures) -> str:
    if features.blank:
        return "blank"
    if features.clipped_share > 0.01:
        return "distorted"
    if features.rms_dbfs < -40 or features.active_share < 0.1:
        return "poor"
    return "good"


def _emotion(features: SignalFeatures, liveliness: float) -> str:
    if features.clipped_share > 0.01:
        return "anger"
    if features.active_share < 0.2:
        return "fear"
    if features.rms_dbfs < -35:
        return "sadness"
    if liveliness >= 0.8:
        return "happiness"
    return "calmness"


def _pronunciation(accuracy: float | None) -> str:
    if accuracy is None or accuracy != accuracy:
        return "average"
    return "good" if accuracy >= 80 else "average" if accuracy >= 50 else "poor"


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))
