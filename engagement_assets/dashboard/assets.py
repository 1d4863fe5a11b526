"""Dashboard wiring: the HTML dashboard in storage, rebuilt by automation whenever what it shows changes."""

import dagster as dg
import pandas as pd

from engagement_assets.dashboard.chart import phase_chart_png, png_markdown
from engagement_assets.dashboard.page import dashboard_html
from engagement_assets.features.summary import by_phase
from engagement_assets.platform.resources import StoreResource
from engagement_assets.storage.layout import DASHBOARD_KEY

GROUP = "dashboard"


@dg.asset(
    group_name=GROUP,
    kinds={"html", "plotly"},
    automation_condition=dg.AutomationCondition.eager(),
)
def engagement_dashboard(
    phase_level_engagement: pd.DataFrame,
    learner_profiles: pd.DataFrame,
    learner_risk: pd.DataFrame,
    cohort_comparison: pd.DataFrame,
    warehouse: StoreResource,
) -> dg.MaterializeResult:
    """The analyst's dashboard, one self-contained HTML file that works offline: accuracy and engagement by
    phase with n and 95% intervals (the weakest phase marked), emotion and engagement-state mix (unknown
    split by cause), weekly trends, filters by milestone level, week and the learners' profile attributes
    (language, school, UDISE code, class, app build, shared device, start week, id source), the cohort
    comparison, the learners at risk with their reasons, a per-learner drill-down, and when it was made."""
    store = warehouse.store()
    generated = pd.Timestamp.now(tz="UTC")
    page = dashboard_html(
        phase_level_engagement, learner_profiles, learner_risk, cohort_comparison, generated
    )
    store.put_bytes(page.encode(), DASHBOARD_KEY)
    summary = by_phase(phase_level_engagement)
    return dg.MaterializeResult(
        metadata={
            "dashboard": dg.MetadataValue.path(store.uri(DASHBOARD_KEY)),
            "by_phase_chart": dg.MetadataValue.md(
                png_markdown(phase_chart_png(summary), "accuracy and engagement by phase")
            ),
            "by_phase": dg.MetadataValue.md(summary.round(1).to_markdown()),
            "generated_at": generated.isoformat(),
            "phases": len(phase_level_engagement),
            "learners": int(phase_level_engagement["UserId"].nunique()),
            "learners_at_high_risk": int((learner_risk["band"] == "high").sum()),
            "megabytes": round(len(page) / 1e6, 2),
        }
    )


DASHBOARD_ASSETS = [engagement_dashboard]
