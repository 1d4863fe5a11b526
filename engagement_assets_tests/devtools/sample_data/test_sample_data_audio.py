from __future__ import annotations

import re
import wave

import numpy as np

KEY = re.compile(r"^learner-ai-demo/[A-Za-z0-9]{32}-\d{13}-[0-4]\.wav$")


def _bucket(landed):
    return landed.root / "audio" / "all-prod-storage"


def _targets(landed):
    return {event["edata"]["target"] for _, _, event in landed.responses()}


def test_audio_keys_are_shaped_like_the_apps(landed):
    keys = _targets(landed) - {""}
    assert keys and all(KEY.match(key) for key in keys)
    assert "" in _targets(landed)  # capture off / R-flow games


def test_wav_objects_are_16khz_mono_16bit_of_a_few_seconds(landed):
    wavs = [p for p in _bucket(landed).rglob("*.wav") if p.read_bytes()[:4] == b"RIFF"]
    assert wavs
    for path in wavs:
        with wave.open(str(path)) as clip:
            assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (16_000, 1, 2)
            assert 0.8 <= clip.getnframes() / 16_000 <= 3.0


def test_webm_under_a_wav_name(landed):
    webm = landed.summary.audio["webm"]
    assert webm
    for key in webm:
        data = (_bucket(landed) / key).read_bytes()
        assert key.endswith(".wav") and data[:4] == bytes.fromhex("1a45dfa3") and b"webm" in data[:64]


def test_missing_keys_have_no_object_but_are_referenced(landed):
    missing = landed.summary.audio["missing"]
    assert missing
    targets = _targets(landed)
    for key in missing:
        assert not (_bucket(landed) / key).exists()
        assert key in targets


def test_silent_and_clipped_clips(landed):
    for key in landed.summary.audio["silent"]:
        samples = np.frombuffer((_bucket(landed) / key).read_bytes()[44:], "<i2")
        assert samples.size and not samples.any()
    for key in landed.summary.audio["clipped"]:
        samples = np.frombuffer((_bucket(landed) / key).read_bytes()[44:], "<i2").astype(int)
        assert (np.abs(samples) >= 32767).mean() > 0.01
    assert landed.summary.audio["silent"] and landed.summary.audio["clipped"]


def test_every_object_is_referenced_by_telemetry(landed):
    targets = _targets(landed)
    objects = [str(p.relative_to(_bucket(landed))) for p in _bucket(landed).rglob("*") if p.is_file()]
    assert len(objects) == landed.summary.audio["objects"]
    assert set(objects) <= targets


def test_faults_reach_kept_responses(landed):
    kept_targets = set()
    kept = {(mid, ets) for f in landed.summary.files for mid, ets, _ in landed.summary.kept(f.path)}
    for _, _, event in landed.responses():
        if (event["mid"], event["ets"]) in kept:
            kept_targets.add(event["edata"]["target"])
    for fault in ("missing", "webm", "silent", "clipped"):
        assert set(landed.summary.audio[fault]) & kept_targets, fault
