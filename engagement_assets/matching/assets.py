"""Stage 3 wiring: each learner's lesson-tracking export, and their responses matched to it."""

import dagster as dg
import pandas as pd

from engagement_assets.matching.matching import match_responses
from engagement_assets.matching.sessions import (
    SessionsFileError,
    empty_sessions,
    parse_sessions,
    sessions_key,
)
from engagement_assets.platform.metadata import preview
from engagement_assets.platform.partitions import learner_batches, learners_of, users
from engagement_assets.platform.resources import PipelineResource, StoreResource
from engagement_assets.storage.store import Store

# Below this share of matched responses the match check warns: usually a sessions export is missing or
# written in another time zone.
MIN_MATCHED_SHARE = 0.5
MATCHED_SHARE_CHECK = "responses_matched_to_a_session"
OWN_SESSION_CHECK = "lesson_rows_in_own_content_session"

learner_sessions = dg.AssetSpec(
    "learner_sessions",
    partitions_def=users,
    group_name="learners",
    kinds={"csv"},
    description=(
        "A learner's lesson-tracking export `<landing>/sessions/<user_id>_learnerai_data.csv`: one row per "
        "practice step saved (sessionId, milestoneLevel, lesson, progress, createdAt). A learner without "
        "a file simply has no lesson rows."
    ),
)


@dg.asset(
    partitions_def=users,
    deps=[learner_sessions],
    # The sessions export is an external file with no materializations; the sessions sensor covers it.
    automation_condition=dg.AutomationCondition.eager().ignore(
        dg.AssetSelection.assets(learner_sessions.key)
    ),
    backfill_policy=learner_batches,
    group_name="learners",
    kinds={"parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            MATCHED_SHARE_CHECK,
            asset="merged_responses",
            description="Share of responses matched to a lesson row.",
        ),
        dg.AssetCheckSpec(
            OWN_SESSION_CHECK,
            asset="merged_responses",
            description="Responses placed in a lesson row of a different ContentSession than their own.",
        ),
    ],
)
def merged_responses(
    context: dg.AssetExecutionContext,
    user_responses: dict[str, pd.DataFrame],
    landing: StoreResource,
    pipeline: PipelineResource,
):
    """Each response of a learner with the lesson-tracking row it belongs to (SessionId, MilestoneLevel,
    Lesson, Progress, CreatedAt_Session), by the configured rule: `nearest` (±5 min, the original rule) or
    `session_forward` (same ContentSession, first row at or after the response). Unmatched responses stay
    with empty session columns."""
    store = landing.store()
    frames, totals = {}, {"matched": 0, "unmatched": 0, "placed_differently": 0, "other_session": 0}
    for learner in learners_of(context):
        result = match_responses(
            user_responses[learner], load_learner_sessions(store, learner), pipeline.match_strategy
        )
        frames[learner] = result.merged
        for name in totals:
            totals[name] += getattr(result, name)
    responses = totals["matched"] + totals["unmatched"]
    share = totals["matched"] / responses if responses else 1.0
    other_rule = "session_forward" if pipeline.match_strategy == "nearest" else "nearest"
    return dg.MaterializeResult(
        value=frames,
        metadata={
            "dagster/row_count": responses,
            "strategy": pipeline.match_strategy,
            "matched": totals["matched"],
            "unmatched": totals["unmatched"],
            "matched_share": round(share, 4),
            f"placed_differently_by_{other_rule}": totals["placed_differently"],
            "preview": preview(pd.concat(frames.values(), ignore_index=True)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=MATCHED_SHARE_CHECK,
                passed=share >= MIN_MATCHED_SHARE,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "matched_share": round(share, 4),
                    "matched": totals["matched"],
                    "responses": responses,
                },
            ),
            dg.AssetCheckResult(
                check_name=OWN_SESSION_CHECK,
                passed=totals["other_session"] == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"in_another_session": totals["other_session"], "strategy": pipeline.match_strategy},
            ),
        ],
    )


def load_learner_sessions(store: Store, learner: str) -> pd.DataFrame:
    """The learner's lesson rows; none when there is no file, a clear failure when the file is unusable."""
    key = sessions_key(learner)
    if not store.exists(key):
        return empty_sessions()
    try:
        return parse_sessions(store.read_bytes(key), store.uri(key))
    except SessionsFileError as err:
        raise dg.Failure(description=str(err)) from None
