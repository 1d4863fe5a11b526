"""The answers to the original use cases, without SQL: where learners struggle (accuracy and engagement by
phase), emotional patterns (emotion and engagement-state mix by phase) and trends over time (per week), as
SVG charts and a static HTML report. Plain string building: no plotting library needed."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

import pandas as pd

from engagement_assets.features.phases import PHASE_ORDER

COLORS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2")
WIDTH, HEIGHT, MARGIN = 640, 280, 40


def by_phase(features: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy, engagement and EQ-accuracy per phase, in practice order."""
    grouped = features.groupby("Phase").agg(
        phases=("Phase", "size"),
        accuracy=("avg_accuracy", "mean"),
        engagement=("avg_Engagement", "mean"),
        eq_accuracy=("EQ_Accuracy_Score", "mean"),
    )
    return grouped.loc[sorted(grouped.index, key=PHASE_ORDER.get)]


def mix_by_phase(features: pd.DataFrame, column: str) -> pd.DataFrame:
    """Share of phases by their most frequent `column` value (e.g. dominant_emotion), per phase."""
    counts = pd.crosstab(features["Phase"], features[column].fillna("unknown"), normalize="index")
    return counts.loc[sorted(counts.index, key=PHASE_ORDER.get)]


def by_week(features: pd.DataFrame) -> pd.DataFrame:
    weeks = features["start_time"].dt.to_period("W").dt.start_time.dt.date.astype(str)
    return features.groupby(weeks).agg(
        accuracy=("avg_accuracy", "mean"), engagement=("avg_Engagement", "mean")
    )


def bar_chart_svg(
    title: str, categories: Sequence[str], series: dict[str, Sequence[float]], top: float = 100
) -> str:
    """Grouped bars, one group per category, one bar per series, values from 0 to `top`."""
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    group_w = plot_w / max(1, len(categories))
    bar_w = group_w * 0.8 / max(1, len(series))
    parts = [_text(WIDTH / 2, 20, title, anchor="middle", weight="bold")]
    parts.append(
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#333"/>'
    )
    for tick in (0, top / 2, top):
        y = HEIGHT - MARGIN - plot_h * tick / top
        parts.append(_text(MARGIN - 4, y + 4, f"{tick:g}", anchor="end"))
    for i, category in enumerate(categories):
        x0 = MARGIN + i * group_w + group_w * 0.1
        for j, values in enumerate(series.values()):
            value = values[i]
            if value is None or pd.isna(value):
                continue
            h = plot_h * min(max(float(value), 0.0), top) / top
            parts.append(
                f'<rect x="{x0 + j * bar_w:.1f}" y="{HEIGHT - MARGIN - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{COLORS[j % len(COLORS)]}"><title>{html.escape(str(category))}: {float(value):.1f}</title></rect>'
            )
        parts.append(_text(x0 + group_w * 0.4, HEIGHT - MARGIN + 14, str(category), anchor="middle"))
    for j, name in enumerate(series):
        x = MARGIN + j * 150
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{COLORS[j % len(COLORS)]}"/>'
        )
        parts.append(_text(x + 14, HEIGHT - 5, name))
    body = "".join(parts)
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">{body}</svg>'


def svg_markdown(svg: str, alt: str) -> str:
    """An SVG as a Markdown image (a data URI), for Dagster's metadata view."""
    return f"![{alt}](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})"


def phase_chart(features: pd.DataFrame) -> str:
    summary = by_phase(features)
    return bar_chart_svg(
        "Engagement and EQ-accuracy by phase",
        list(summary.index),
        {"engagement": summary["engagement"].tolist(), "EQ-accuracy": summary["eq_accuracy"].tolist()},
    )


def html_report(features: pd.DataFrame) -> str:
    """A self-contained page: phase struggles, emotional patterns, weekly trends, one chart and table each."""
    sections = [("Where learners struggle", phase_chart(features), by_phase(features))]
    emotions = mix_by_phase(features, "dominant_emotion") * 100
    sections.append(
        (
            "Emotional patterns (share of phases by dominant emotion, %)",
            bar_chart_svg(
                "Dominant emotion by phase", list(emotions.index), {c: emotions[c].tolist() for c in emotions}
            ),
            emotions.round(1),
        )
    )
    states = mix_by_phase(features, "engagement_state") * 100
    sections.append(("Engagement states by phase (%)", "", states.round(1)))
    weekly = by_week(features)
    sections.append(
        (
            "Trends over time (per week)",
            bar_chart_svg(
                "Accuracy and engagement per week",
                list(weekly.index),
                {c: weekly[c].tolist() for c in weekly},
            ),
            weekly,
        )
    )
    body = "".join(
        f"<h2>{html.escape(title)}</h2>{chart}{table.to_html(float_format=lambda v: f'{v:.1f}', border=0)}"
        for title, chart, table in sections
    )
    learners = features["UserId"].nunique()
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Phase-level engagement</title>"
        "<style>body{font-family:sans-serif;max-width:760px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{padding:2px 8px;text-align:right}</style></head><body>"
        f"<h1>Phase-level engagement</h1><p>{learners} learners, {len(features)} phases.</p>{body}</body></html>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", weight: str = "normal") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-weight="{weight}">{html.escape(text)}</text>'
