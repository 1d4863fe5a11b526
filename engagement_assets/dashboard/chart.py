"""The chart the dashboard asset's page shows inline: accuracy and engagement by phase with their 95%
intervals and the number of phases under each, the weakest accuracy marked. Drawn with matplotlib into a
PNG, because the UI shows an image, not the dashboard's script."""

from __future__ import annotations

import base64
import io

import pandas as pd

COLORS = {"accuracy": "#4C78A8", "engagement": "#F58518"}
WEAKEST = "#E45756"


def phase_chart_png(summary: pd.DataFrame) -> bytes:
    """`summary` is features.summary.by_phase(): one row per phase in practice order."""
    # Imported here: every run and step process imports the code location, and only this step draws. A
    # Figure of its own, not pyplot: no global state and no screen, safe in any step or thread.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 3.4), dpi=90)
    axes = figure.subplots()
    positions = range(len(summary))
    width = 0.38
    for offset, measure in ((-width / 2, "accuracy"), (width / 2, "engagement")):
        axes.bar(
            [p + offset for p in positions],
            summary[measure].fillna(0),
            width,
            yerr=summary[f"{measure}_ci"].fillna(0),
            capsize=2,
            color=COLORS[measure],
            label=f"mean {measure} (95% interval)",
        )
    if summary["accuracy"].notna().any():
        weakest = list(summary.index).index(summary["accuracy"].idxmin())
        axes.annotate(
            "weakest accuracy",
            (weakest - width / 2, summary["accuracy"].iloc[weakest]),
            xytext=(0, 14),
            textcoords="offset points",
            ha="center",
            color=WEAKEST,
            fontsize=8,
            arrowprops={"arrowstyle": "->", "color": WEAKEST},
        )
    axes.set_xticks(
        list(positions), [f"{phase}\nn={n}" for phase, n in summary["phases"].items()], fontsize=8
    )
    axes.set_ylim(0, 125)  # room for the legend above the bars
    axes.set_ylabel("0-100", fontsize=8)
    axes.set_title("Where learners struggle: accuracy and engagement by phase", fontsize=10)
    axes.legend(fontsize=7, loc="upper center", ncol=2, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    """A PNG as a Markdown image (a data URI): what Dagster's metadata view shows inline."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
