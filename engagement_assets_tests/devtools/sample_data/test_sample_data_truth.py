"""The planted truth agrees with a plain reading of the stage-1 rules (README, "Stage 1"), file by file and per user."""

from __future__ import annotations

import gzip
import json
import random
import zlib
from collections import Counter

import pytest

from engagement_assets.devtools.sample_data import LandingSummary
from engagement_assets.devtools.sample_data.events import APP_PDATAS, Surroundings, event_context
from engagement_assets.devtools.sample_data.identity import STYLES, LearnerIds
from engagement_assets.devtools.sample_data.ids import api_token
from engagement_assets.devtools.sample_data.malformed import (
    BAD_LINE,
    GARBAGE_GZIP,
    INVALID_UTF8,
    TRUNCATED_ARRAY,
    TRUNCATED_GZIP,
)

from .reference_stage1 import resolve_user, stage1_file


def test_summary_file_matches_the_returned_summary(landed):
    loaded = LandingSummary.load(landed.root)
    assert loaded.files == landed.summary.files
    assert loaded.expected_per_user == landed.summary.expected_per_user


def test_kept_per_file_matches_a_reference_stage1(landed):
    for f in landed.summary.files:
        kept, rows, malformed = stage1_file(landed.root / f.path)
        truth = landed.summary.kept(f.path)
        assert sorted(kept) == sorted(truth), f.path
        assert len(truth) == f.kept_count == sum(f.kept_by_source.values())
        assert (rows, malformed) == (f.records, f.malformed), f.path


def test_expected_per_user_is_the_count_after_cross_file_dedupe(landed):
    seen, per_user = set(), Counter()
    for f in landed.summary.files:
        for mid, ets, user_id in landed.summary.kept(f.path):
            if (mid, ets) not in seen:
                seen.add((mid, ets))
                per_user[user_id] += 1
    assert dict(per_user) == landed.summary.expected_per_user
    assert sum(f.kept_count for f in landed.summary.files) > landed.summary.expected_total  # duplicates exist


def test_kept_user_ids_come_from_every_source(landed):
    sources = Counter()
    for f in landed.summary.files:
        sources.update(f.kept_by_source)
    assert set(sources) == {"virtualId", "buddy", "jwt", "User", "uid", "actor"}


def test_default_landing_truth_matches_reference(landed_default):
    for f in landed_default.summary.files:
        kept, _, _ = stage1_file(landed_default.root / f.path)
        assert sorted(kept) == sorted(landed_default.summary.kept(f.path)), f.path


@pytest.mark.parametrize("style", [style for style, _ in STYLES], ids=lambda s: s.__name__)
def test_identity_styles_declare_what_the_precedence_rule_resolves(style):
    token = api_token(random.Random(0), "4829163057", 1_750_000_000)
    ids = LearnerIds("4829163057", "b1e5c0f2a9d84c7e93f6a2d1c8e7b4f0", token, "1234567/7654321")
    for attempt in range(10):
        identity = style(ids, random.Random(attempt))
        surroundings = Surroundings("S" * 32, identity, ids.device_id, "en", (), APP_PDATAS[0][0])
        actor, context = event_context(surroundings, "P" * 32)
        event = json.loads(json.dumps({"actor": actor, "context": context}))
        assert resolve_user(event) == (identity.expected_user_id, identity.expected_source)


def _lines(path):
    return path.read_bytes().split(b"\n")


def test_bad_line_file_has_exactly_one_unparseable_line(landed):
    bad = 0
    for line in _lines(landed.root / "telemetry" / BAD_LINE):
        if line.strip():
            try:
                json.loads(line)
            except json.JSONDecodeError:
                bad += 1
    assert bad == 1


def test_invalid_utf8_file_has_a_line_that_does_not_decode(landed):
    undecodable = 0
    for line in _lines(landed.root / "telemetry" / INVALID_UTF8):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            undecodable += 1
            with pytest.raises(json.JSONDecodeError):
                json.loads(line.decode("utf-8", errors="replace"))
    assert undecodable == 1


def test_truncated_array_does_not_parse_but_its_head_does(landed):
    text = (landed.root / "telemetry" / TRUNCATED_ARRAY).read_text(encoding="utf-8")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert text.startswith("[{") and not text.rstrip().endswith("]")


def test_corrupt_gzip_files_fail_to_decompress(landed):
    garbage = (landed.root / "telemetry" / GARBAGE_GZIP).read_bytes()
    assert garbage[:2] == b"\x1f\x8b"
    with pytest.raises((OSError, zlib.error)):
        gzip.decompress(garbage)
    truncated = (landed.root / "telemetry" / TRUNCATED_GZIP).read_bytes()
    with pytest.raises(EOFError):
        gzip.decompress(truncated)
    summary = landed.summary.file(TRUNCATED_GZIP)
    assert summary.records > 0 and summary.malformed == 1


def test_malformed_files_are_flagged_in_the_summary(landed):
    damaged = {f.path.split("/")[-1] for f in landed.summary.files if f.malformed}
    assert damaged == {BAD_LINE, INVALID_UTF8, TRUNCATED_ARRAY, GARBAGE_GZIP, TRUNCATED_GZIP}
    assert all(f.note for f in landed.summary.files if f.malformed)
