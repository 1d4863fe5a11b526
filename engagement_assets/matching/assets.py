"""Stage 3 wiring: each learner's lesson-tracking export, and their responses matched to it."""

from collections import Counter

import dagster as dg
import pandas as pd

from engagement_assets.matching.matching import MERGED_SCHEMA, match_responses
from engagement_assets.matching.sessions import SessionsFileError, empty_sessions, parse_sessions
from engagement_assets.platform.metadata import add_partition_metadata, batch_metadata, table_metadata
from engagement_assets.platform.partitions import default_learner_batches, learners_of, users
from engagement_assets.platform.resources import PipelineResource, StoreResource
from engagement_assets.storage import layout
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
        "A learner's lesson-tracking export `<landing>/sessions/<learner key>_learnerai_data.csv`: one row per "
        "practice step saved (sessionId, milestoneLevel, lesson, progress, createdAt). A learner without "
        "a file simply has no lesson rows."
    ),
)


@dg.asset(
    partitions_def=users,
    deps=[learner_sessions],
    group_name="learners",
    backfill_policy=default_learner_batches,
    kinds={"parquet"},
    metadata=table_metadata(MERGED_SCHEMA),
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
    other_rule = "session_forward" if pipeline.match_strategy == "nearest" else "nearest"
    frames, counts = {}, {}
    for learner in learners_of(context):
        result = match_responses(
            user_responses[learner], load_learner_sessions(store, learner), pipeline.match_strategy
        )
        frames[learner] = result.merged
        counts[learner] = Counter({name: getattr(result, name) for name in _COUNTED})
    add_partition_metadata(context, {learner: _described(c, other_rule) for learner, c in counts.items()})
    totals = sum(counts.values(), Counter())
    responses = totals["matched"] + totals["unmatched"]
    share = totals["matched"] / responses if responses else 1.0
    return dg.MaterializeResult(
        value=frames,
        metadata={
            "strategy": pipeline.match_strategy,
            **batch_metadata({"learners": len(frames), **_described(totals, other_rule)}),
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


_COUNTED = ("matched", "unmatched", "placed_differently", "other_session")


def _described(counts: Counter, other_rule: str) -> dict:
    responses = counts["matched"] + counts["unmatched"]
    return {
        "responses": responses,
        "matched": counts["matched"],
        "unmatched": counts["unmatched"],
        "matched_share": round(counts["matched"] / responses, 4) if responses else 1.0,
        f"placed_differently_by_{other_rule}": counts["placed_differently"],
    }


def load_learner_sessions(store: Store, learner: str) -> pd.DataFrame:
    """The lesson rows of a learner (by partition key); none when there is no file, a clear failure when
    the file is unusable."""
    key = layout.sessions_key(learner)
    if not store.exists(key):
        return empty_sessions()
    try:
        return parse_sessions(store.read_bytes(key), store.uri(key))
    except SessionsFileError as err:
        raise dg.Failure(description=str(err)) from None
