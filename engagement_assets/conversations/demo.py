"""The conversation group end to end with nothing to configure: a fake NocoDB on 127.0.0.1 seeded with
generated conversations, one sync, the daily tables of every day it touched, then the learner analytics and
reports. Part of `engagement-demo`; MongoDB is used only when MONGODB_URI is set."""

from __future__ import annotations

import os
import secrets

import dagster as dg

from engagement_assets.conversations import assets as group
from engagement_assets.conversations.fake_nocodb import FakeNocoDB
from engagement_assets.conversations.resources import conversation_resources
from engagement_assets.conversations.sample import generate
from engagement_assets.conversations.settings import ConversationSettings
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
        resources = conversation_resources(settings, platform)
        days = sync_and_build(instance, resources)
    print(f"  conversations: {len(conversation_rows)} generated, {len(days)} day(s) built: {', '.join(days)}")
    return days


def sync_and_build(instance: dg.DagsterInstance, resources: dict) -> list[str]:
    """One sync, the daily tables of the days it changed, then the all-days tables: what the sensor and
    automation do in a deployment, in this process."""
    synced = _materialize([group.nocodb_sync], instance, resources)
    (event,) = synced.get_asset_materialization_events()
    days = list(event.materialization.metadata[group.AFFECTED_DAYS].value)
    for day in days:
        _materialize(group.DAILY_ASSETS, instance, resources, partition_key=day)
    _materialize([group.user_analytics, group.analytics_reports], instance, resources)
    return days


def _materialize(selection, instance, resources, partition_key=None):
    result = dg.materialize(
        group.ASSETS, selection=selection, instance=instance, resources=resources, partition_key=partition_key
    )
    if not result.success:
        raise RuntimeError(f"materializing {[a.key.to_user_string() for a in selection]} failed")
    return result
