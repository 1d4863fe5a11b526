"""The report's numbers and its charts."""

from __future__ import annotations

import base64

import pandas as pd
import pytest

from engagement_assets.features.report import (
    bar_chart_svg,
    by_phase,
    by_week,
    html_report,
    mix_by_phase,
    svg_markdown,
)


@pytest.fixture
def features(golden) -> pd.DataFrame:
    frame = pd.read_csv(golden / "expected" / "phase_features.csv", dtype={"UserId": str})
    frame["start_time"] = pd.to_datetime(frame["start_time"])
    return frame


def test_phase_summary_is_in_practice_order_with_the_means(features):
    summary = by_phase(features)
    assert list(summary.index) == ["P1", "P2", "P3", "P4", "S1", "P5", "P6", "P7"]
    p1 = features[features["Phase"] == "P1"]
    assert summary.loc["P1", "accuracy"] == pytest.approx(p1["avg_accuracy"].mean())
    assert summary.loc["P1", "phases"] == len(p1)


def test_mixes_are_shares_and_weeks_cover_the_data(features):
    mix = mix_by_phase(features, "dominant_emotion")
    assert mix.sum(axis=1).round(6).eq(1).all()
    assert len(by_week(features)) >= 1


def test_charts_are_valid_svg_with_a_bar_per_value():
    svg = bar_chart_svg("t", ["P1", "P2"], {"a": [10, 90], "b": [50, None]})
    assert svg.startswith("<svg") and svg.endswith("</svg>") and svg.count("<rect") == 3 + 2  # bars + legend
    assert base64.b64decode(svg_markdown(svg, "x").split("base64,")[1][:-1]).decode() == svg


def test_the_html_report_answers_the_three_questions(features):
    page = html_report(features)
    for heading in ("Where learners struggle", "Emotional patterns", "Trends over time"):
        assert heading in page
    assert page.count("<svg") == 3 and "<table" in page
