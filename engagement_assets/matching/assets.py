"""Stage 3 wiring: each learner's lesson-tracking export, and their responses matched to it."""

from collections import Counter
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from engagement_assets.matching.matching import MERGED_SCHEMA, match_responses
from engagement_assets.matching.sessions import SessionsFileError, empty_sessions, parse_sessions
from engagement_assets.platform.checks import learner_check, learner_check_evaluations
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
READABLE_EXPORTS_CHECK = "lesson_tracking_exports_readable"

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
        learner_check(
            MATCHED_SHARE_CHECK,
            "merged_responses",
            "Share of the learner's responses matched to a lesson row.",
        ),
        learner_check(
            OWN_SESSION_CHECK,
            "merged_responses",
            "The learner's responses placed in a lesson row of a different ContentSession than their own.",
        ),
        learner_check(
            READABLE_EXPORTS_CHECK,
            "merged_responses",
            "The learner's lesson-tracking export could be read; if not, their responses are stored "
            "unmatched, with the reason in their metadata (`sessions_file`).",
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
    with empty session columns; so do all of a learner's responses when their export cannot be read (that
    costs only that learner: the reason is in their metadata and the readable-exports check fails)."""
    store = landing.store()
    other_rule = "session_forward" if pipeline.match_strategy == "nearest" else "nearest"
    frames, counts, exports = {}, {}, {}
    for learner in learners_of(context):
        sessions = load_learner_sessions(store, learner)
        result = match_responses(user_responses[learner], sessions.rows, pipeline.match_strategy)
        frames[learner], exports[learner] = result.merged, sessions.status
        counts[learner] = Counter({name: getattr(result, name) for name in _COUNTED})
    unreadable = {learner: status for learner, status in exports.items() if status.startswith(UNREADABLE)}
    if unreadable:
        context.log.warning(
            f"{len(unreadable)} lesson-tracking export(s) could not be read, e.g. {next(iter(unreadable.items()))}"
        )
    add_partition_metadata(
        context,
        {
            learner: {**_described(c, other_rule), "sessions_file": exports[learner]}
            for learner, c in counts.items()
        },
    )
    totals = sum(counts.values(), Counter())
    yield dg.MaterializeResult(
        value=frames,
        metadata={
            "strategy": pipeline.match_strategy,
            **batch_metadata(
                {
                    "learners": len(frames),
                    "unreadable_exports": len(unreadable),
                    **_described(totals, other_rule),
                }
            ),
        },
    )
    yield from learner_check_evaluations(
        context,
        {learner: _checked(c, exports[learner], pipeline.match_strategy) for learner, c in counts.items()},
    )


def _checked(counts: Counter, export: str, strategy: str) -> list[dg.AssetCheckResult]:
    """One learner's check results."""
    responses = counts["matched"] + counts["unmatched"]
    share = counts["matched"] / responses if responses else 1.0
    return [
        dg.AssetCheckResult(
            check_name=MATCHED_SHARE_CHECK,
            passed=share >= MIN_MATCHED_SHARE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"matched_share": round(share, 4), "matched": counts["matched"], "responses": responses},
        ),
        dg.AssetCheckResult(
            check_name=OWN_SESSION_CHECK,
            passed=counts["other_session"] == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"in_another_session": counts["other_session"], "strategy": strategy},
        ),
        dg.AssetCheckResult(
            check_name=READABLE_EXPORTS_CHECK,
            passed=not export.startswith(UNREADABLE),
            metadata={"sessions_file": export},
        ),
    ]


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


UNREADABLE = "unreadable"


@dataclass(frozen=True)
class LearnerSessions:
    rows: pd.DataFrame
    status: str  # "read", "none" (no file: not an error) or "unreadable: <why>"


def load_learner_sessions(store: Store, learner: str) -> LearnerSessions:
    """The lesson rows of a learner (by partition key): none when there is no file or it cannot be read,
    with the reason."""
    key = layout.sessions_key(learner)
    if not store.exists(key):
        return LearnerSessions(empty_sessions(), "none")
    try:
        return LearnerSessions(parse_sessions(store.read_bytes(key), store.uri(key)), "read")
    except SessionsFileError as err:
        return LearnerSessions(empty_sessions(), f"{UNREADABLE}: {err}")
