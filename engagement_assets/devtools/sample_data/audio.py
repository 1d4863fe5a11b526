"""Recordings in the audio bucket: 16 kHz mono PCM WAV as RecordRTC uploads them, plus the real-world faults.

Faults seen in real recordings: silent clips, clipped (overdriven) clips, WebM/Opus uploaded under a `.wav` key, and
keys whose upload failed so no object exists.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
NORMAL = "wav"
SILENT = "silent"
CLIPPED = "clipped"
WEBM = "webm"
MISSING = "missing"
FAULTS = (MISSING, WEBM, SILENT, CLIPPED)
_FAULT_CHANCE = {MISSING: 0.04, WEBM: 0.04, SILENT: 0.03, CLIPPED: 0.03}

# EBML header of a MediaRecorder file: EBMLVersion 1, ReadVersion 1, MaxIDLength 4, MaxSizeLength 8,
# DocType "webm", DocTypeVersion 4, DocTypeReadVersion 2; then a Segment of unknown size and its Info.
WEBM_HEADER = bytes.fromhex(
    "1a45dfa3 9f 4286 81 01 42f7 81 01 42f2 81 04 42f3 81 08 4282 84 7765626d 4287 81 04 4285 81 02"
    " 18538067 01ffffffffffffff"
    " 1549a966 99 2ad7b1 83 0f4240 4d80 86 4368726f6d65 5741 86 4368726f6d65"
    " 1654ae6b"
)


def wav_bytes(samples: np.ndarray) -> bytes:
    """A canonical 44-byte RIFF header followed by little-endian int16 PCM."""
    data = samples.astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
    header += b"data" + struct.pack("<I", len(data))
    return header + data


_TABLE_SIZE = 2048
# One glottal-like period (harmonics falling off with order), looked up instead of summing sines per sample.
_PERIOD = sum(
    np.sin(k * 2 * np.pi * np.arange(_TABLE_SIZE) / _TABLE_SIZE) / k**1.3 for k in range(1, 7)
).astype(np.float32)
# Room/microphone hiss, drawn once and read at a random offset: drawing it per clip dominated the cost.
_HISS = np.random.default_rng(0).normal(0, 0.004, 4 * SAMPLE_RATE).astype(np.float32)


def voiced(rng: np.random.Generator, seconds: float, gain: float) -> np.ndarray:
    """A child-like voiced signal: harmonics of a wavering 220–320 Hz pitch under syllable-rate bursts."""
    count = int(seconds * SAMPLE_RATE)
    t = np.arange(count, dtype=np.float32) / SAMPLE_RATE
    vibrato = np.sin(np.float32(2 * np.pi * rng.uniform(4, 7)) * t)
    pitch = np.float32(rng.uniform(220, 320)) * (1 + 0.04 * vibrato - np.float32(0.08 / seconds) * t)
    cycles = np.cumsum(pitch, dtype=np.float64) / SAMPLE_RATE
    harmonics = _PERIOD[(cycles * _TABLE_SIZE).astype(np.int64) % _TABLE_SIZE]
    bursts = np.maximum(
        np.sin(np.float32(np.pi * rng.uniform(3, 5)) * t + np.float32(rng.uniform(0, np.pi))), 0
    )
    speech = harmonics * bursts * bursts * _speech_window(count, rng)
    offset = int(rng.integers(0, len(_HISS) - count)) if count < len(_HISS) else 0
    hiss = np.resize(_HISS[offset:], count)
    return np.clip((speech * np.float32(gain) + hiss) * 32767, -32768, 32767)


def _speech_window(count: int, rng: np.random.Generator) -> np.ndarray:
    """Silence before and after the words, as the learner presses record and then stops."""
    window = np.zeros(count, dtype=np.float32)
    lead = int(count * rng.uniform(0.05, 0.2))
    tail = int(count * rng.uniform(0.05, 0.15))
    window[lead : count - tail] = 1.0
    return window


def webm_bytes(rng: np.random.Generator, seconds: float) -> bytes:
    """EBML/WebM header, then opaque Opus-sized payload (about 4 KB/s)."""
    return WEBM_HEADER + rng.bytes(int(seconds * 4_000))


def recording(kind: str, rng: np.random.Generator, seconds: float) -> bytes:
    if kind == WEBM:
        return webm_bytes(rng, seconds)
    if kind == SILENT:
        return wav_bytes(np.zeros(int(seconds * SAMPLE_RATE)))
    gain = rng.uniform(2.5, 4.0) if kind == CLIPPED else rng.uniform(0.15, 0.35)
    return wav_bytes(voiced(rng, seconds, gain))


@dataclass
class AudioBucket:
    """Decides what lies behind each audio key and, when writing is on, puts it under the bucket folder."""

    folder: Path
    seed: int
    write: bool
    objects: int = 0
    bytes_written: int = 0
    faults: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in FAULTS})
    keys_seen: int = 0
    _kept_seen: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.seed}:audio")

    def put(self, key: str, kept: bool) -> str:
        kind = self._kind(kept)
        self.keys_seen += 1
        if not self.write:
            return kind
        if kind != NORMAL:
            self.faults[kind].append(key)
        if kind != MISSING:
            self._store(key, kind)
        return kind

    def _kind(self, kept: bool) -> str:
        # Every fault shows up among the responses stage 1 keeps, whatever the seed.
        if kept:
            self._kept_seen += 1
            forced = {2: MISSING, 4: WEBM, 6: SILENT, 8: CLIPPED}.get(self._kept_seen)
            if forced:
                self._rng.random()  # draw anyway, so the keys after a forced one get the same faults
                return forced
        draw = self._rng.random()
        for kind in FAULTS:
            if draw < _FAULT_CHANCE[kind]:
                return kind
            draw -= _FAULT_CHANCE[kind]
        return NORMAL

    def _store(self, key: str, kind: str) -> None:
        rng = np.random.default_rng([self.seed, self.keys_seen])
        payload = recording(kind, rng, float(rng.uniform(0.9, 2.8)))
        path = self.folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        self.objects += 1
        self.bytes_written += len(payload)
