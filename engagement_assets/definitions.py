"""The code location's one entry point: `dagster dev -m engagement_assets.definitions`.

The environment is read here, once, when the code location loads; each group's definitions are built from
those settings, and the shared resources (storage, the Gemini client) are built once and handed to all.
"""

from __future__ import annotations

import dagster as dg

from engagement_assets.cohorts.definitions import build_cohort_definitions
from engagement_assets.conversations.definitions import build_conversation_definitions
from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.dashboard.definitions import build_dashboard_definitions
from engagement_assets.deploy.executors import executor_for
from engagement_assets.engagement_pipeline import build_engagement_definitions
from engagement_assets.platform.resources import build_resources
from engagement_assets.prediction.definitions import build_prediction_definitions
from engagement_assets.prediction.settings import PredictionSettings
from engagement_assets.settings import Settings


def build_definitions(
    settings: Settings,
    conversations: ConversationSettings | None = None,
    prediction: PredictionSettings | None = None,
) -> dg.Definitions:
    # Definitions.merge refuses two different resources under one key, so no group can shadow another's.
    return dg.Definitions.merge(
        dg.Definitions(resources=build_resources(settings), executor=executor_for(settings.executor)),
        build_engagement_definitions(settings),
        build_prediction_definitions(prediction or PredictionSettings()),
        build_cohort_definitions(),
        build_dashboard_definitions(),
        build_conversation_definitions(conversations or ConversationSettings(), settings),
    )


defs = build_definitions(Settings.from_env(), ConversationSettings.from_env(), PredictionSettings.from_env())
