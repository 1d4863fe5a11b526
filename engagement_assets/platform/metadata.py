"""Materialization metadata that reads like a report in the Dagster UI."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import pandas as pd

PREVIEW_ROWS = 10


def counts_table(counts: Mapping[str, int], label: str = "reason") -> dg.MetadataValue:
    """A Markdown table of counts, largest first (an em dash when there is nothing to count)."""
    if not any(counts.values()):
        return dg.MetadataValue.md("—")
    lines = [f"| {label} | rows |", "|---|---:|"]
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    lines += [f"| {key} | {count:,} |" for key, count in ordered if count]
    return dg.MetadataValue.md("\n".join(lines))


def preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False) if len(frame) else "(no rows)")
