"""The analyst's dashboard: one self-contained HTML file (Plotly inlined, the data embedded), which works
offline and is opened from the asset page. The charts are computed in the page from the embedded rows, so
its filters (milestone level, week, and the learners' profile attributes: start week, language, school,
UDISE code, class, app build, shared device, id source) need no server."""

from __future__ import annotations

import html
import json
from importlib import resources

import pandas as pd
from plotly.offline import get_plotlyjs

from engagement_assets.cohorts.profiles import COHORT_ATTRIBUTES
from engagement_assets.features.phases import PHASE_ORDER

PHASE_COLUMNS = (
    "UserId",
    "MilestoneLevel",
    "Phase",
    "end_time",
    "avg_accuracy",
    "avg_Engagement",
    "dominant_emotion",
    "engagement_state",
    "audio_quality",
)
# Each phase row has its own milestone level: the learners' latest is not a filter of their phases.
PROFILE_FILTERS = tuple(name for name in COHORT_ATTRIBUTES if name != "latest_milestone_level")
PROFILE_COLUMNS = ("UserId", *PROFILE_FILTERS)
RISK_COLUMNS = (
    "UserId",
    "band",
    "probability",
    "days_since_last_practice",
    "reason_1",
    "reason_2",
    "reason_3",
)
COMPARISON_COLUMNS = (
    "attribute",
    "cohort",
    "compared_with",
    "measure",
    "learners",
    "other_learners",
    "mean",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "status",
)
FILTERS = {
    "MilestoneLevel": "milestone level",
    "week": "week the phase ended",
    **{name: name.replace("_", " ") for name in PROFILE_FILTERS},
}
RISK_SHOWN = 200


def dashboard_html(
    phases: pd.DataFrame,
    profiles: pd.DataFrame,
    risk: pd.DataFrame,
    comparison: pd.DataFrame,
    generated_at: pd.Timestamp,
) -> str:
    rows = phases[list(PHASE_COLUMNS)].assign(week=_weeks(phases["end_time"]))
    data = {
        "phase_order": list(PHASE_ORDER),
        "filters": list(FILTERS),
        "phases": _records(rows),
        "profiles": _records(profiles[list(PROFILE_COLUMNS)]),
        "risk": _records(_at_risk(risk)),
        "risk_columns": list(RISK_COLUMNS),
        "comparison": _records(comparison[list(COMPARISON_COLUMNS)]),
        "comparison_columns": list(COMPARISON_COLUMNS),
    }
    window = (
        f"{phases['end_time'].min():%Y-%m-%d} to {phases['end_time'].max():%Y-%m-%d}"
        if len(phases)
        else "no data yet"
    )
    filters = {**{name: rows[name] for name in ("MilestoneLevel", "week")}, **_profile_values(rows, profiles)}
    return _PAGE.format(
        plotly=get_plotlyjs(),
        data=_script_json(data),
        script=resources.files(__package__).joinpath("dashboard.js").read_text(),
        generated=f"{generated_at:%Y-%m-%d %H:%M} UTC",
        window=html.escape(window),
        learners=rows["UserId"].nunique(),
        controls="".join(_select(name, label, filters[name]) for name, label in FILTERS.items()),
        learner_options="".join(
            f'<option value="{html.escape(str(user))}">{html.escape(str(user))}</option>'
            for user in sorted(rows["UserId"].unique())
        ),
    )


def _weeks(times: pd.Series) -> pd.Series:
    return times.dt.strftime("%G-W%V")


def _profile_values(rows: pd.DataFrame, profiles: pd.DataFrame) -> dict:
    shown = profiles[profiles["UserId"].isin(rows["UserId"])]
    return {name: shown[name] for name in PROFILE_FILTERS}


def _at_risk(risk: pd.DataFrame) -> pd.DataFrame:
    order = {"high": 0, "medium": 1, "low": 2, "unknown": 3}
    ranked = risk.assign(_rank=risk["band"].map(order)).sort_values(
        ["_rank", "probability"], ascending=[True, False]
    )
    return ranked[list(RISK_COLUMNS)].head(RISK_SHOWN)


def _select(name: str, label: str, values: pd.Series) -> str:
    options = "".join(
        f'<option value="{html.escape(str(value))}">{html.escape(str(value))}</option>'
        for value in sorted(values.dropna().astype(str).unique())
    )
    return (
        f'<label>{html.escape(label)} <select id="filter-{name}"><option value="">all</option>{options}</select>'
        "</label>"
    )


def _records(frame: pd.DataFrame) -> list[dict]:
    # Through JSON, so timestamps become ISO text and NaN becomes null.
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def _script_json(data: dict) -> str:
    """JSON that cannot end the script element it sits in, whatever the learner ids hold."""
    text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Learner engagement dashboard</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
.controls label {{ margin-right: 16px; }} .chart {{ height: 420px; }}
table {{ border-collapse: collapse; font-size: 13px; }} td, th {{ border: 1px solid #ddd; padding: 3px 6px; }}
#errors {{ color: #b00; }}
</style>
<script>window.__errors = []; window.addEventListener("error", function (e) {{
  window.__errors.push(String(e.message)); document.getElementById("errors").textContent = window.__errors.join("\\n");
}});</script>
<script>{plotly}</script>
</head><body>
<h1>Learner engagement</h1>
<p>Generated {generated}; data from {window}; {learners} learner(s). <span id="shown"></span></p>
<pre id="errors"></pre>
<div class="controls">{controls}</div>
<div id="chart-struggle" class="chart"></div>
<div id="chart-emotion" class="chart"></div>
<div id="chart-state" class="chart"></div>
<div id="chart-trend" class="chart"></div>
<h2>Cohorts compared (per learner; 95% intervals of the difference)</h2>
<table id="cohorts"></table>
<h2>Learners at risk of stopping (a prediction to help decide whom to contact, not a grade)</h2>
<table id="risk"></table>
<h2>One learner</h2>
<label>learner <select id="learner">{learner_options}</select></label>
<div id="chart-learner" class="chart"></div>
<script type="application/json" id="dashboard-data">{data}</script>
<script>{script}</script>
</body></html>
"""
