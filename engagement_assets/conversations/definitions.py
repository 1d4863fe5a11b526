"""The conversation group as Dagster definitions, built from its settings and the platform's."""

from __future__ import annotations

import dagster as dg

from engagement_assets.conversations.assets import build_conversation_group
from engagement_assets.conversations.resources import conversation_resources
from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.settings import Settings


def build_conversation_definitions(settings: ConversationSettings, platform: Settings) -> dg.Definitions:
    """Its assets, sensor and own resources; the Gemini client comes with the platform's resources."""
    group = build_conversation_group(settings, platform.sensor_interval_seconds)
    return dg.Definitions(
        assets=group.assets,
        sensors=[group.nocodb_sensor],
        resources=conversation_resources(settings, platform),
    )
