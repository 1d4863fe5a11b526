"""Stage 5 end to end on stored clips: triage (blank, unsupported, missing), the local analyzer, and the
Gemini path with its cache, checkpoints, spending cap, and a killed run that resumes without re-paying."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from engagement_assets.analysis.analyze import GeminiSetup, analyze_responses
from engagement_assets.analysis.cache import clip_cache
from engagement_assets.analysis.gemini import PROMPT_VERSION
from engagement_assets.analysis.schema import CATEGORY_SETS
from engagement_assets.analysis.signal import UnsupportedAudio, signal_features
from engagement_assets.audio.formats import sniff_format
from engagement_assets.devtools.sample_data.audio import voiced, wav_bytes, webm_bytes
from engagement_assets.platform.result_cache import cache_key
from engagement_assets.storage.store import LocalStore, read_url
from engagement_assets_tests.analysis.test_gemini import MODEL, analyzer
from engagement_assets_tests.fake_gemini import FakeGemini

T0 = pd.Timestamp("2025-06-12 10:00:00")


def speech(seed: int, seconds: float = 0.6) -> bytes:
    return wav_bytes(voiced(np.random.default_rng(seed), seconds, 0.3))


def build(tmp_path: Path, clips: list[tuple[str, bytes | None]]):
    """Responses and a download manifest for `clips` of (status, bytes) stored under tmp_path/clips."""
    folder = tmp_path / "clips"
    folder.mkdir(exist_ok=True)
    responses, manifest = [], []
    for i, (status, data) in enumerate(clips):
        key = dict(event_mid=f"m{i}", event_ets=T0 + pd.Timedelta(seconds=i))
        responses.append(
            {
                **key,
                "original_text": f"Sentence {i % 7}",
                "accuracy_percentage": 70.0,
                "audio_link": f"ch/{i}.wav",
            }
        )
        row = {**key, "status": status, "format": None, "storage_path": None, "sha256": None, "error": None}
        if data is not None:
            path = folder / f"{i}.wav"
            path.write_bytes(data)
            row.update(
                format=sniff_format(data[:12]),
                storage_path=str(path),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        manifest.append(row)
    frame = pd.DataFrame(responses)
    frame["event_ets"] = frame["event_ets"].astype("datetime64[ms]")
    man = pd.DataFrame(manifest)
    man["event_ets"] = man["event_ets"].astype("datetime64[ms]")
    return frame, man


MIXED = [
    ("stored", speech(1)),
    ("stored", wav_bytes(np.zeros(16_000))),  # silent
    ("stored", speech(2, 0.1)),  # too short
    ("stored", webm_bytes(np.random.default_rng(3), 1.0)),
    ("missing", None),
    ("no_audio", None),
    ("failed", None),
    ("skipped_existing", speech(4)),
]
EXPECTED_STATUSES = [
    "analysed",
    "blank",
    "blank",
    "unsupported",
    "missing_audio",
    "no_audio",
    "download_failed",
    "analysed",
]


def test_local_analyzer_triages_and_rates(tmp_path):
    responses, manifest = build(tmp_path, MIXED)
    frame, report = analyze_responses(responses, manifest, read_url)
    assert frame["status"].tolist() == EXPECTED_STATUSES
    assert (frame["analyzer"] == "local").all() and (frame["prompt_version"] == "local-v1").all()
    analysed = frame[frame["status"] == "analysed"]
    for column, allowed in CATEGORY_SETS.items():
        assert analysed[column].isin(allowed).all()
    assert analysed["EQ_score"].between(0, 100).all() and analysed["engagement_score"].between(0, 100).all()
    blank = frame[frame["status"] == "blank"]
    assert (blank["audio_quality"] == "blank").all() and blank["EQ_score"].isna().all()
    assert frame.loc[1, "error"] == "silent" and frame.loc[2, "error"] == "shorter than 0.2 s"
    assert "webm recording" in frame.loc[3, "error"]
    assert report.by_status["analysed"] == 2


def damaged_headers(count: int, seed: int = 1) -> list[bytes]:
    """PCM WAV files with 1-4 random bytes of their 44-byte header replaced."""
    good, rng = speech(5), random.Random(seed)
    damaged = []
    for _ in range(count):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(44)] = rng.randrange(256)
        damaged.append(bytes(data))
    return damaged


def test_a_damaged_wav_header_costs_only_its_own_clip():
    for data in damaged_headers(1500):
        try:
            signal_features(data)
        except UnsupportedAudio as err:
            assert str(err).startswith("not a PCM WAV file") or "samples are not supported" in str(err)


def test_clips_with_damaged_headers_among_good_ones_are_unsupported_rows_and_the_rest_is_analysed(tmp_path):
    broken = [data for data in damaged_headers(200) if _unreadable(data)][:5]
    clips = [("stored", speech(1)), *(("stored", data) for data in broken), ("stored", speech(2))]
    responses, manifest = build(tmp_path, clips)
    frame, _ = analyze_responses(responses, manifest, read_url)
    assert frame["status"].tolist() == ["analysed", *["unsupported"] * len(broken), "analysed"]
    assert frame["error"].iloc[1 : 1 + len(broken)].notna().all()


def _unreadable(data: bytes) -> bool:
    try:
        signal_features(data)
    except UnsupportedAudio:
        return True
    return False


def gemini_setup(fake, store, max_usd=None, checkpoint_every=25, **options):
    return GeminiSetup(analyzer(fake, **options), clip_cache(store, checkpoint_every), max_usd)


def test_gemini_path_never_sends_blank_or_unsupported_clips_and_a_rerun_makes_no_calls(tmp_path):
    responses, manifest = build(tmp_path, MIXED)
    store = LocalStore(tmp_path / "warehouse")
    with FakeGemini() as fake:
        first, report = analyze_responses(responses, manifest, read_url, gemini_setup(fake, store))
        assert first["status"].tolist() == EXPECTED_STATUSES
        assert len(fake.requests) == 2 and report.model_calls == 2 and report.checkpoints == 1
        assert (first["analyzer"] == "gemini").all() and (first["model"] == MODEL).all()
        assert report.input_tokens > 0 and report.spent_usd > 0 and report.estimated_usd > 0
        second, again = analyze_responses(responses, manifest, read_url, gemini_setup(fake, store))
        assert len(fake.requests) == 2 and again.model_calls == 0 and again.cached == 2
    pd.testing.assert_frame_equal(first, second)


def test_identical_clips_with_the_same_sentence_share_one_call(tmp_path):
    same = speech(9)
    responses, manifest = build(
        tmp_path, [("stored", same)] * 7 + [("stored", same)]
    )  # sentences 0..6, then 0 again
    with FakeGemini() as fake:
        frame, _ = analyze_responses(
            responses, manifest, read_url, gemini_setup(fake, LocalStore(tmp_path / "w"))
        )
        assert len(fake.requests) == 7
    assert (frame["status"] == "analysed").all()
    assert frame.loc[0, "EQ_score"] == frame.loc[7, "EQ_score"]


def test_failed_answers_are_not_cached_and_are_retried_next_run(tmp_path):
    responses, manifest = build(tmp_path, [("stored", speech(i)) for i in range(4)])
    store = LocalStore(tmp_path / "w")
    with FakeGemini() as fake:
        fake.fail_clip(speech(2), "out_of_range", times=1)
        first, _ = analyze_responses(responses, manifest, read_url, gemini_setup(fake, store))
        assert first["status"].tolist() == ["analysed", "analysed", "failed", "analysed"]
        second, report = analyze_responses(responses, manifest, read_url, gemini_setup(fake, store))
    assert (second["status"] == "analysed").all() and report.model_calls == 1 and report.cached == 3


def test_the_spending_cap_stops_sending_and_leaves_budget_rows(tmp_path):
    responses, manifest = build(tmp_path, [("stored", speech(i)) for i in range(5)])
    with FakeGemini() as fake:
        setup = gemini_setup(fake, LocalStore(tmp_path / "w"), max_usd=0.00005)
        frame, report = analyze_responses(responses, manifest, read_url, setup)
        sent = len(fake.requests)
    assert 0 < sent < 5
    assert frame["status"].tolist() == ["analysed"] * sent + ["budget"] * (5 - sent)
    assert report.estimated_usd > 0.00005 and "GEMINI_MAX_USD_PER_RUN" in frame.loc[4, "error"]


RESUMABLE_RUN = """
import sys, pandas as pd
from engagement_assets.analysis.analyze import analyze_responses
from engagement_assets_tests.analysis.test_analyze import gemini_setup
from engagement_assets.storage.store import LocalStore, read_url
class Fake:  # only the URL of the parent's fake server is needed
    url = sys.argv[1]
responses, manifest = pd.read_pickle(sys.argv[2]), pd.read_pickle(sys.argv[3])
analyze_responses(responses, manifest, read_url, gemini_setup(Fake, LocalStore(sys.argv[4]), checkpoint_every=2, concurrency=2))
"""


def test_a_killed_run_resumes_without_paying_again_for_checkpointed_clips(tmp_path):
    count = 30
    responses, manifest = build(tmp_path, [("stored", speech(i)) for i in range(count)])
    responses.to_pickle(tmp_path / "r.pkl")
    manifest.to_pickle(tmp_path / "m.pkl")
    store = LocalStore(tmp_path / "w")
    with FakeGemini(latency_seconds=0.15) as fake:
        args = [
            sys.executable,
            "-c",
            RESUMABLE_RUN,
            fake.url,
            tmp_path / "r.pkl",
            tmp_path / "m.pkl",
            store.root,
        ]
        child = subprocess.Popen(
            [str(arg) for arg in args], env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
        )
        deadline = time.monotonic() + 60
        while len(fake.requests) < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
        before = len(fake.requests)
        assert 0 < before < count
        keys = {
            cache_key(row.sha256, f"Sentence {i % 7}", MODEL, PROMPT_VERSION): row.sha256
            for i, row in enumerate(manifest.itertuples())
        }
        checkpointed = {keys[key] for key in clip_cache(store).lookup(set(keys))}
        frame, report = analyze_responses(responses, manifest, read_url, gemini_setup(fake, store))
        resent = [request.audio_sha256 for request in fake.requests[before:]]
    assert (frame["status"] == "analysed").all()
    assert len(checkpointed) >= 10 and report.cached == len(checkpointed)
    assert checkpointed.isdisjoint(resent)  # nothing paid for and checkpointed is paid for again
    assert len(resent) == report.model_calls == count - len(checkpointed)
