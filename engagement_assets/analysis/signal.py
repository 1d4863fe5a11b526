"""Signal features of a recording, read straight from its PCM samples (numpy, no audio libraries).

These decide which clips are not worth sending to a model (silent, too short) and feed the local
analyzer's heuristics.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from dataclasses import dataclass

import numpy as np

from engagement_assets.errors import describe

SILENCE_PEAK_DBFS = -50.0
MIN_SECONDS = 0.2
CLIP_LEVEL = 0.99
FRAME_SECONDS = 0.02
# A frame counts as speech when louder than this, and within 30 dB of the loudest frame.
ACTIVITY_FLOOR_DBFS = -45.0
ACTIVITY_RANGE_DB = 30.0


class UnsupportedAudio(ValueError):
    """Not a PCM WAV this module can read (e.g. WebM/Opus, or float/compressed WAV)."""


@dataclass(frozen=True)
class SignalFeatures:
    seconds: float
    peak_dbfs: float
    rms_dbfs: float
    clipped_share: float
    active_share: float
    level_spread_db: float  # standard deviation of the level of speech frames: how lively the voice is

    @property
    def silent(self) -> bool:
        return self.peak_dbfs < SILENCE_PEAK_DBFS

    @property
    def too_short(self) -> bool:
        return self.seconds < MIN_SECONDS

    @property
    def blank(self) -> bool:
        """Nothing a listener (or a model) could judge: silence, or shorter than MIN_SECONDS."""
        return self.silent or self.too_short


def read_pcm(data: bytes) -> tuple[np.ndarray, int]:
    """Mono samples scaled to [-1, 1] and the sample rate of a PCM WAV file."""
    try:
        with wave.open(io.BytesIO(data)) as clip:
            width, channels, rate = clip.getsampwidth(), clip.getnchannels(), clip.getframerate()
            frames = clip.readframes(clip.getnframes())
    # The standard library's parser fails on a damaged header in several ways (a bad chunk size ends in a
    # bare RuntimeError from its seek): each is this clip's problem, never the batch's.
    except (wave.Error, EOFError, RuntimeError, struct.error, ValueError, OverflowError) as err:
        raise UnsupportedAudio(f"not a PCM WAV file: {describe(err)}") from None
    dtype = {1: np.uint8, 2: "<i2", 4: "<i4"}.get(width)
    if dtype is None:
        raise UnsupportedAudio(f"{8 * width}-bit WAV samples are not supported")
    samples = np.frombuffer(frames[: len(frames) - len(frames) % (width * channels)], dtype=dtype).astype(
        np.float64
    )
    if width == 1:
        samples -= 128
    samples /= float(2 ** (8 * width - 1))
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


def signal_features(data: bytes) -> SignalFeatures:
    samples, rate = read_pcm(data)
    seconds = len(samples) / rate if rate else 0.0
    if not len(samples):
        return SignalFeatures(seconds, -math.inf, -math.inf, 0.0, 0.0, 0.0)
    frame = max(1, int(rate * FRAME_SECONDS))
    usable = len(samples) - len(samples) % frame or len(samples)
    frames = samples[:usable].reshape(-1, min(frame, usable))
    frame_db = _db(np.sqrt(np.mean(frames**2, axis=1)))
    loudest = frame_db.max()
    active = frame_db > max(ACTIVITY_FLOOR_DBFS, loudest - ACTIVITY_RANGE_DB)
    return SignalFeatures(
        seconds=seconds,
        peak_dbfs=float(_db(np.max(np.abs(samples)))),
        rms_dbfs=float(_db(np.sqrt(np.mean(samples**2)))),
        clipped_share=float(np.mean(np.abs(samples) >= CLIP_LEVEL)),
        active_share=float(active.mean()),
        level_spread_db=float(frame_db[active].std()) if active.sum() > 1 else 0.0,
    )


def _db(value):
    with np.errstate(divide="ignore"):
        return 20 * np.log10(value)
