"""The audio copier against the local S3 server through a fault-injecting proxy: retries, timeouts,
missing objects, resets, cut-short bodies, skip-existing, refused keys, and a killed run."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from botocore.config import Config

from engagement_assets.audio.copier import AudioCopier, Clip, CopyPolicy
from engagement_assets.devtools.sample_data.audio import wav_bytes, webm_bytes
from engagement_assets.storage.s3 import s3_client
from engagement_assets.storage.store import LocalStore, S3Store
from engagement_assets_tests.faults import HANG, RESET, SLOW, TRUNCATE, FaultProxy

WAV = wav_bytes(np.zeros(16_000, dtype=np.int16) + 1000)
WEBM = webm_bytes(np.random.default_rng(1), 1.0)
CLIPS = {"ch/a.wav": WAV, "ch/b.wav": WAV[:-2] + b"zz", "ch/webm.wav": WEBM, "ch/c.wav": WAV + b"c"}


@pytest.fixture
def proxy(s3_endpoint, s3, monkeypatch):
    with FaultProxy(s3_endpoint, hang_seconds=2.5) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        yield running


@pytest.fixture
def audio_bucket(s3, bucket):
    for key, data in CLIPS.items():
        s3.put_object(Bucket=bucket, Key=f"audio/{key}", Body=data)
    return bucket


def source(bucket, timeout=1.0) -> S3Store:
    config = Config(read_timeout=timeout, connect_timeout=timeout, retries={"total_max_attempts": 1})
    return S3Store(bucket, "audio", s3_client(config))


def copier(bucket, destination, **policy) -> AudioCopier:
    waits = []
    made = AudioCopier(
        source(bucket), destination, CopyPolicy(**{"workers": 4, **policy}), sleep=waits.append
    )
    made.waits = waits
    return made


def clip(link, mid="m") -> Clip:
    return Clip(mid, 0, link, "response_audio/u1")


def by_link(rows) -> dict:
    return {row["audio_link"]: row for row in rows}


@pytest.fixture(params=["local", "s3"])
def destination(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "warehouse")
    return S3Store(request.getfixturevalue("audio_bucket"), "warehouse")


def test_every_clip_stored_with_hash_and_real_format(proxy, audio_bucket, destination):
    rows = by_link(copier(audio_bucket, destination).copy_all([clip(key) for key in CLIPS]))
    for key, data in CLIPS.items():
        row = rows[key]
        assert (row["status"], row["bytes"], row["attempts"]) == ("stored", len(data), 1)
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
        assert destination.read_bytes(f"response_audio/u1/{key}") == data
    assert rows["ch/webm.wav"]["format"] == "webm" and rows["ch/a.wav"]["format"] == "wav"


@pytest.mark.parametrize("faults", [("500", "503"), (HANG,), (RESET,), (TRUNCATE,), ("503", RESET)])
def test_transient_faults_are_retried_with_backoff(proxy, audio_bucket, tmp_path, faults):
    proxy.plan("ch/a.wav", *faults)
    made = copier(audio_bucket, LocalStore(tmp_path / "w"))
    (row,) = made.copy_all([clip("ch/a.wav")])
    assert (row["status"], row["attempts"], row["error"]) == ("stored", len(faults) + 1, None)
    assert (tmp_path / "w" / "response_audio" / "u1" / "ch" / "a.wav").read_bytes() == WAV
    assert len(made.waits) == len(faults)
    assert all(0 <= wait <= 0.5 * 2**i for i, wait in enumerate(made.waits))


def test_a_clip_that_keeps_failing_fails_alone(proxy, audio_bucket, tmp_path):
    proxy.plan("ch/a.wav", "500", "500", "500")
    rows = by_link(copier(audio_bucket, LocalStore(tmp_path / "w")).copy_all([clip(key) for key in CLIPS]))
    assert (rows["ch/a.wav"]["status"], rows["ch/a.wav"]["attempts"]) == ("failed", 3)
    assert "InternalError" in rows["ch/a.wav"]["error"]
    assert {rows[key]["status"] for key in CLIPS if key != "ch/a.wav"} == {"stored"}
    assert not (tmp_path / "w" / "response_audio" / "u1" / "ch" / "a.wav").exists()


def test_a_clip_larger_than_the_limit_is_refused_alone_and_not_retried(proxy, s3, audio_bucket, tmp_path):
    s3.put_object(Bucket=audio_bucket, Key="audio/ch/huge.wav", Body=WAV + b"\0" * 3_000_000)
    made = copier(audio_bucket, LocalStore(tmp_path / "w"), max_clip_megabytes=1.0)
    rows = by_link(made.copy_all([clip(key) for key in [*CLIPS, "ch/huge.wav"]]))
    assert (rows["ch/huge.wav"]["status"], rows["ch/huge.wav"]["attempts"]) == ("failed", 1)
    assert "larger than 1 MB" in rows["ch/huge.wav"]["error"]
    assert {rows[key]["status"] for key in CLIPS} == {"stored"}
    assert not list((tmp_path / "w").rglob("huge.wav"))


def test_missing_objects_are_rows_and_not_retried(proxy, audio_bucket, tmp_path):
    rows = copier(audio_bucket, LocalStore(tmp_path / "w")).copy_all([clip("ch/never-uploaded.wav")])
    assert (rows[0]["status"], rows[0]["attempts"]) == ("missing", 1)
    assert proxy.count("GET", "never-uploaded") == 1


def test_rerunning_skips_what_is_stored_without_downloading(proxy, audio_bucket, destination):
    clips = [clip(key) for key in CLIPS]
    first = copier(audio_bucket, destination).copy_all(clips)
    gets = proxy.count("GET", "/audio/")
    second = copier(audio_bucket, destination).copy_all(clips)
    assert {row["status"] for row in second} == {"skipped_existing"}
    assert [row["sha256"] for row in second] == [row["sha256"] for row in first]
    assert [row["format"] for row in second] == [row["format"] for row in first]
    assert proxy.count("GET", "/audio/") == gets  # only HEADs to compare sizes


def test_a_changed_source_object_is_copied_again(proxy, s3, audio_bucket, tmp_path):
    destination = LocalStore(tmp_path / "w")
    copier(audio_bucket, destination).copy_all([clip("ch/a.wav")])
    s3.put_object(Bucket=audio_bucket, Key="audio/ch/a.wav", Body=WAV + b"longer")
    (row,) = copier(audio_bucket, destination).copy_all([clip("ch/a.wav")])
    assert row["status"] == "stored" and row["bytes"] == len(WAV) + 6


@pytest.mark.parametrize("link", ["../../escape.wav", "/etc/passwd", "ch/../../x.wav"])
def test_keys_that_would_escape_are_refused(proxy, audio_bucket, tmp_path, link):
    (row,) = copier(audio_bucket, LocalStore(tmp_path / "w")).copy_all([clip(link)])
    assert row["status"] == "failed" and row["error"].startswith("refused")
    assert proxy.count("GET", "escape") == 0
    assert not list(tmp_path.rglob("*.wav"))


def test_responses_without_audio_get_a_row(proxy, audio_bucket, tmp_path):
    (row,) = copier(audio_bucket, LocalStore(tmp_path / "w")).copy_all([clip(None)])
    assert (row["status"], row["attempts"], row["storage_path"]) == ("no_audio", 0, None)


def test_a_download_slower_than_the_timeout_is_retried(proxy, s3, audio_bucket, tmp_path):
    s3.put_object(Bucket=audio_bucket, Key="audio/ch/big.wav", Body=b"RIFF" + b"\0" * (400 << 10))
    proxy.plan("ch/big.wav", SLOW)
    made = copier(audio_bucket, LocalStore(tmp_path / "w"), timeout_seconds=0.5)
    (row,) = made.copy_all([clip("ch/big.wav")])
    assert (row["status"], row["attempts"]) == ("stored", 2)


def test_a_trickling_download_is_cut_at_its_deadline_not_after_the_whole_body(
    proxy, s3, audio_bucket, tmp_path
):
    # 2 MB in 16 KB pieces every 50 ms: 6.4 s to send it all.
    s3.put_object(Bucket=audio_bucket, Key="audio/ch/slow.wav", Body=b"RIFF" + b"\0" * (2 << 20))
    proxy.plan("ch/slow.wav", SLOW, SLOW, SLOW)
    made = copier(audio_bucket, LocalStore(tmp_path / "w"), timeout_seconds=0.5, attempts=2)
    started = time.monotonic()
    (row,) = made.copy_all([clip("ch/slow.wav")])
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert "longer than 0.5 s" in row["error"]
    assert time.monotonic() - started < 3.0  # two attempts cut at 0.5 s each, not 12.8 s of trickle


KILL_SCRIPT = """
import sys
from engagement_assets.audio.copier import AudioCopier, Clip, CopyPolicy
from engagement_assets.storage.store import LocalStore, S3Store
AudioCopier(S3Store(sys.argv[1], "audio"), LocalStore(sys.argv[2]), CopyPolicy(workers=1)).copy_all(
    [Clip("m", 0, "ch/huge.wav", "response_audio/u1")])
"""


def test_a_killed_run_leaves_no_partial_clip(proxy, s3, audio_bucket, tmp_path):
    s3.put_object(Bucket=audio_bucket, Key="audio/ch/huge.wav", Body=b"RIFF" + b"\1" * (2 << 20))
    proxy.plan("ch/huge.wav", SLOW)
    warehouse = tmp_path / "w"
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, audio_bucket, str(warehouse)], env=os.environ.copy()
    )
    deadline = time.monotonic() + 30
    while proxy.count("GET", "huge.wav") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # mid-transfer: the body trickles for several seconds
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert proxy.count("GET", "huge.wav") == 1
    assert not [path for path in warehouse.rglob("*") if path.is_file()]
