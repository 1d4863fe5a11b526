"""The code location's one entry point: `dagster dev -m engagement_assets.definitions`."""

from __future__ import annotations

import dagster as dg

from engagement_assets.analysis.assets import audio_analysis
from engagement_assets.audio.assets import response_audio
from engagement_assets.automation.sensors import SENSORS
from engagement_assets.conversations import assets as conversation_group
from engagement_assets.conversations.resources import conversation_resources
from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.features.assets import phase_features, phase_level_engagement
from engagement_assets.ingestion.assets import cleaned_telemetry, telemetry_drop
from engagement_assets.matching.assets import learner_sessions, merged_responses
from engagement_assets.platform.executors import executor_for
from engagement_assets.platform.resources import build_resources
from engagement_assets.responses.assets import user_responses
from engagement_assets.settings import Settings

ASSETS = [
    telemetry_drop,
    cleaned_telemetry,
    user_responses,
    learner_sessions,
    merged_responses,
    response_audio,
    audio_analysis,
    phase_features,
    phase_level_engagement,
]


def build_definitions(
    settings: Settings, conversations: ConversationSettings | None = None
) -> dg.Definitions:
    conversations = conversations or ConversationSettings()
    return dg.Definitions(
        assets=[*ASSETS, *conversation_group.ASSETS],
        sensors=[*SENSORS, *conversation_group.SENSORS],
        resources={
            **build_resources(settings),
            **conversation_resources(conversations, settings),
        },
        executor=executor_for(settings.executor),
    )


defs = build_definitions(Settings.from_env(), ConversationSettings.from_env())
