"""The conversation group end to end with nothing to configure: a fake NocoDB on 127.0.0.1 seeded with
generated conversations, one sync, the daily tables of every day it touched, then the learner analytics and
reports. Part of `engagement-demo`; MongoDB is used only when MONGODB_URI is set."""

from __future__ import annotations

import os
import secrets

import dagster as dg

from engagement_assets.conversations.assets import AFFECTED_DAYS, ConversationGroup, build_conversation_group
from engagement_assets.conversations.resources import conversation_resources
from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.devtools.conversation_sample import generate
from engagement_assets.devtools.fake_nocodb import FakeNocoDB
from engagement_assets.devtools.runs import QUIET
from engagement_assets.platform.resources import gemini_resource
from engagement_assets.settings import Settings

SAMPLE_CONVERSATIONS = 60


def run_conversation_demo(instance: dg.DagsterInstance, platform: Settings, seed: int = 7) -> list[str]:
    """Runs the whole group against a seeded fake NocoDB; returns the days materialized."""
    with FakeNocoDB(token=secrets.token_urlsafe(16)) as nocodb:
        conversation_rows, message_rows = generate(conversations=SAMPLE_CONVERSATIONS, seed=seed)
        tables = {name: nocodb.create_table(name) for name in ("conversations", "messages")}
        nocodb.add_rows(tables["conversations"], conversation_rows)
        nocodb.add_rows(tables["messages"], message_rows)
        # The resource reads the token as an EnvVar, as in production; it lives only in this process.
        os.environ["NOCODB_API_TOKEN"] = nocodb.token
        settings = ConversationSettings.from_env(
            {
                **os.environ,
                "NOCODB_BASE_URL": nocodb.url,
                "NOCODB_PROJECT_ID": nocodb.base_id,
                "NOCODB_CONVERSATION_TABLE": tables["conversations"],
                "NOCODB_MESSAGES_TABLE": tables["messages"],
            }
        )
        group = build_conversation_group(settings, platform.sensor_interval_seconds)
        resources = {**conversation_resources(settings, platform), "gemini": gemini_resource(platform)}
        days = sync_and_build(group, instance, resources)
    print(f"  conversations: {len(conversation_rows)} generated, {len(days)} day(s) built: {', '.join(days)}")
    return days


def sync_and_build(group: ConversationGroup, instance: dg.DagsterInstance, resources: dict) -> list[str]:
    """One sync, the daily tables of the days it changed, then the all-days tables: what the sensor and
    automation do in a deployment, in this process."""
    synced = _materialize(group, [group.nocodb_sync], instance, resources)
    (event,) = synced.get_asset_materialization_events()
    days = list(event.materialization.metadata[AFFECTED_DAYS].value)
    for day in days:
        _materialize(group, group.daily, instance, resources, partition_key=day)
    _materialize(
        group, [group.user_analytics, group.analytics_reports, group.model_reports], instance, resources
    )
    return days


def _materialize(group: ConversationGroup, selection, instance, resources, partition_key=None):
    result = dg.materialize(
        group.assets,
        selection=selection,
        instance=instance,
        resources=resources,
        partition_key=partition_key,
        run_config=QUIET,
    )
    if not result.success:
        raise RuntimeError(f"materializing {[a.key.to_user_string() for a in selection]} failed")
    return result
