"""The dashboard as a person opens it: built by its asset on the golden pipeline, opened in headless
Chromium, every chart drawn by Plotly with no JavaScript error; a hostile learner id stays text. The
screenshot is kept under .test-artifacts/."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from engagement_assets.analysis.assets import audio_analysis
from engagement_assets.audio.assets import response_audio
from engagement_assets.cohorts.assets import COHORT_ASSETS
from engagement_assets.dashboard.assets import engagement_dashboard
from engagement_assets.dashboard.page import COMPARISON_COLUMNS, FILTERS, PROFILE_COLUMNS, dashboard_html
from engagement_assets.engagement_pipeline import ASSETS
from engagement_assets.features.assets import phase_features, phase_level_engagement
from engagement_assets.matching.assets import merged_responses
from engagement_assets.prediction.assets import PREDICTION_ASSETS, prediction_resource
from engagement_assets.prediction.settings import PredictionSettings
from engagement_assets.responses.assets import user_responses
from engagement_assets_tests.dashboard.browser import chromium_binary, rendered_dom, screenshot
from engagement_assets_tests.ingestion.test_golden_ingestion import DROPS, expected_learners
from engagement_assets_tests.pipeline import materialize_drops, materialize_learners_batched, resources_for

ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts"
CHARTS = ("chart-struggle", "chart-emotion", "chart-state", "chart-trend", "chart-learner")


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_binary()


def drawn_charts(dom: str) -> set[str]:
    """The chart divs Plotly drew into (each holds an SVG of class main-svg once drawn)."""
    return {
        chart
        for chart in CHARTS
        if re.search(rf'<div id="{chart}"[^>]*class="[^"]*js-plotly-plot[^"]*"', dom) and "main-svg" in dom
    }


def errors_in(dom: str) -> str:
    return re.search(r'<pre id="errors">(.*?)</pre>', dom, re.S)[1]


def test_the_dashboard_asset_draws_every_chart_without_a_script_error(instance, golden, tmp_path, chromium):
    resources = {
        **resources_for(
            str(tmp_path / "w"),
            str(golden / "landing"),
            audio_source_url=str(golden / "landing" / "audio" / "all-prod-storage"),
        ),
        "prediction": prediction_resource(PredictionSettings()),
    }
    materialize_drops(instance, resources, DROPS)
    stages = (user_responses, merged_responses, response_audio, audio_analysis, phase_features)
    assert materialize_learners_batched(instance, resources, expected_learners(golden), stages).success
    result = dg.materialize(
        [*ASSETS, *PREDICTION_ASSETS, *COHORT_ASSETS, engagement_dashboard],
        selection=[phase_level_engagement, *PREDICTION_ASSETS, *COHORT_ASSETS, engagement_dashboard],
        instance=instance,
        resources=resources,
    )
    assert result.success
    page = tmp_path / "w" / "reports" / "engagement_dashboard.html"
    dom = rendered_dom(chromium, page)
    assert errors_in(dom) == ""
    assert drawn_charts(dom) == set(CHARTS)
    assert dom.count('class="main-svg"') >= len(CHARTS)
    assert "weakest accuracy" in dom and "Generated " in dom
    assert screenshot(chromium, page, ARTIFACTS / "dashboard.png").stat().st_size > 10_000
    # The asset page's inline chart: a PNG in the metadata's Markdown, as the UI shows it.
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key == engagement_dashboard.key
    ]
    markdown = event.materialization.metadata["by_phase_chart"].value
    png = base64.b64decode(
        re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)[1]
    )
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
    (ARTIFACTS / "by_phase_chart.png").write_bytes(png)


def test_a_hostile_learner_id_is_shown_as_text_and_breaks_nothing(tmp_path, chromium):
    hostile = '</script><img src=x onerror="window.__errors.push(1)">'
    end = pd.Timestamp("2025-06-02 10:00")
    phases = pd.DataFrame(
        {
            "UserId": [hostile, "1234567890"],
            "MilestoneLevel": ["m1", "m1"],
            "Phase": ["P1", "P2"],
            "end_time": [end, end],
            "avg_accuracy": [70.0, 60.0],
            "avg_Engagement": [55.0, 65.0],
            "dominant_emotion": [None, "calmness"],
            "engagement_state": ["engaged", None],
            "audio_quality": ["blank", "good"],
        }
    )
    profiles = pd.DataFrame(
        {name: [None, None] for name in PROFILE_COLUMNS}
        | {"UserId": [hostile, "1234567890"], "start_week": ["2025-W23"] * 2, "school_name": [hostile, None]}
    )
    risk = pd.DataFrame(
        {
            "UserId": [hostile],
            "band": ["high"],
            "probability": [0.7],
            "days_since_last_practice": [1.0],
            "reason_1": ["<b>bold</b>"],
            "reason_2": [None],
            "reason_3": [None],
        }
    )
    comparison = pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    page = tmp_path / "dashboard.html"
    page.write_text(dashboard_html(phases, profiles, risk, comparison, pd.Timestamp("2025-06-03", tz="UTC")))
    dom = rendered_dom(chromium, page)
    assert errors_in(dom) == "" and '<img src="x"' not in dom and "<b>bold</b>" not in dom
    assert drawn_charts(dom) == set(CHARTS)
    assert "unknown: blank audio" in dom
    assert all(f'id="filter-{name}"' in dom for name in FILTERS)
