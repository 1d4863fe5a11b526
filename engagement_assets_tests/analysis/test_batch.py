"""Batch mode through the real SDK against the fake Batch API: submit, poll, read back into the cache,
resume a job that outlived its run without paying again, and half the price."""

from __future__ import annotations

import pytest

from engagement_assets.analysis.analyze import GeminiSetup, analyze_responses
from engagement_assets.analysis.batch import BatchStillRunning, GeminiBatchAnalyzer
from engagement_assets.analysis.cache import clip_cache
from engagement_assets.storage.store import LocalStore, read_url
from engagement_assets_tests.analysis.test_analyze import build, gemini_setup, speech
from engagement_assets_tests.analysis.test_gemini import MODEL, client_for
from engagement_assets_tests.fake_gemini import FakeGemini


def batch_setup(fake, store, max_wait_seconds=10.0) -> GeminiSetup:
    analyzer = GeminiBatchAnalyzer(
        client_for(fake), MODEL, store, poll_seconds=0.02, max_wait_seconds=max_wait_seconds
    )
    return GeminiSetup(analyzer, clip_cache(store))


def test_a_batch_job_analyses_every_clip_into_the_cache(tmp_path):
    responses, manifest = build(tmp_path, [("stored", speech(i)) for i in range(6)])
    store = LocalStore(tmp_path / "w")
    with FakeGemini(batch_pending_polls=2, batch_running_polls=2, batch_reverse_order=True) as fake:
        fake.fail_clip(speech(4), "out_of_range", times=1)
        frame, report = analyze_responses(responses, manifest, read_url, batch_setup(fake, store))
        assert len(fake.batches) == 1 and not fake.requests  # nothing went through the online endpoint
        assert frame["status"].tolist() == ["analysed"] * 4 + ["failed", "analysed"]
        assert "not a number in 0-100" in frame.loc[4, "error"] or "is not one of" in frame.loc[4, "error"]
        online, _ = analyze_responses(responses, manifest, read_url, gemini_setup(fake, store))
        assert len(fake.requests) == 1  # only the clip the batch could not analyse
    assert (online["status"] == "analysed").all()
    assert report.spent_usd > 0 and not list((tmp_path / "w").glob("analysis_batches/*"))


def test_a_job_still_running_is_resumed_by_the_next_run_not_resubmitted(tmp_path):
    responses, manifest = build(tmp_path, [("stored", speech(i)) for i in range(3)])
    store = LocalStore(tmp_path / "w")
    with FakeGemini(batch_pending_polls=1000) as fake:
        with pytest.raises(BatchStillRunning, match="materializing again collects them"):
            analyze_responses(responses, manifest, read_url, batch_setup(fake, store, max_wait_seconds=0.1))
        assert len(list((tmp_path / "w" / "analysis_batches").iterdir())) == 1
        fake.batch_pending_polls = 0
        fake.batch_running_polls = 0
        setup = batch_setup(fake, store)
        frame, _ = analyze_responses(responses, manifest, read_url, setup)
        assert len(fake.batches) == 1 and setup.analyzer.resumed == 1 and setup.analyzer.submitted == 0
    assert (frame["status"] == "analysed").all()


def test_batch_costs_half_the_online_price(tmp_path):
    responses, manifest = build(tmp_path, [("stored", speech(i)) for i in range(3)])
    with FakeGemini() as fake:
        _, batch = analyze_responses(
            responses, manifest, read_url, batch_setup(fake, LocalStore(tmp_path / "b"))
        )
        _, online = analyze_responses(
            responses, manifest, read_url, gemini_setup(fake, LocalStore(tmp_path / "o"))
        )
    assert batch.spent_usd == pytest.approx(online.spent_usd / 2)
    assert batch.estimated_usd == pytest.approx(online.estimated_usd / 2)
