"""Stage 1 and 2 against the generator's ground truth: every planted shape, user-id variant, duplicate and
damaged record, in both formats and gzip, across several drops and many learners."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from engagement_assets import learner_key
from engagement_assets.devtools.sample_data import generate_landing
from engagement_assets.ingestion.cleaning import clean_drop
from engagement_assets.storage import layout
from engagement_assets.storage.store import open_store
from engagement_assets_tests.pipeline import (
    materialize_drops,
    materialize_learners_batched,
    resources_for,
    stored_frame,
)


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    summary = generate_landing(root, learners=30, seed=11, audio=False, malformed=True)
    return root, summary


def test_clean_drop_keeps_exactly_the_planted_responses(landing, tmp_path):
    root, summary = landing
    assert {f.format for f in summary.files} == {"json", "jsonl"} and any(f.gzip for f in summary.files)
    for planted in summary.files:
        with open(root / planted.path, "rb") as stream:
            parts, report, _, _ = clean_drop(stream, planted.path, tmp_path / planted.path, chunk_size=97)
        kept = set()
        for path in parts.files:
            table = pq.read_table(path, columns=["event_mid", "event_ets", "user_id"]).to_pylist()
            kept |= {
                (row["event_mid"], int(row["event_ets"].timestamp() * 1000), row["user_id"]) for row in table
            }
        assert kept == set(summary.kept(planted.path)), planted.path
        assert report.kept == planted.kept_count, planted.path
        assert report.records == planted.records, planted.path
        assert sum(report.quarantined.values()) == planted.malformed, planted.path


def test_each_learner_gets_exactly_their_responses_across_all_drops(landing, instance, tmp_path):
    root, summary = landing
    resources = resources_for(str(tmp_path / "w"), str(root))
    drops = [f.path.removeprefix("telemetry/") for f in summary.files]
    assert all(result.success for result in materialize_drops(instance, resources, drops))
    learners = sorted(summary.expected_per_user)
    assert any("/" in learner for learner in learners)  # buddies are their own learners
    assert materialize_learners_batched(instance, resources, [learner_key(x) for x in learners]).success
    store = open_store(tmp_path / "w")
    counts = {
        learner: len(stored_frame(store, layout.partition_file("user_responses", learner_key(learner))))
        for learner in learners
    }
    assert counts == summary.expected_per_user
