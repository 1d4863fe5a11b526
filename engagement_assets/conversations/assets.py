"""The conversation-analytics asset group: NocoDB → per-day raw rows → daily analytics tables (Parquet under
`year=/month=/day=`, and MongoDB when configured) → per-learner analytics and daily/weekly/monthly reports.
Built from the group's settings by `build_conversation_group`."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import dagster as dg
import pandas as pd
import pyarrow as pa

from engagement_assets.conversations import analytics
from engagement_assets.conversations.categorize import CATEGORIES_SCHEMA, categories_table, categorize
from engagement_assets.conversations.collect import load_state, read_raw_day, sync
from engagement_assets.conversations.layout import day_parts
from engagement_assets.conversations.model_categories import (
    categorize_with_model,
    model_config,
    validated_categories,
)
from engagement_assets.conversations.records import parse_rows
from engagement_assets.conversations.resources import ConversationOptions, MongoResource, NocoDBResource
from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.platform.gemini_client import GeminiClient
from engagement_assets.platform.io_manager import DAILY_HIVE, LAYOUT_METADATA
from engagement_assets.platform.metadata import counts_table, declared_schema, table_metadata
from engagement_assets.platform.pools import GEMINI_POOL
from engagement_assets.platform.resources import GeminiResource, StoreResource
from engagement_assets.storage import layout
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.store import Store

GROUP = "conversation_analytics"
IO_MANAGER = "conversations_io_manager"
AFFECTED_DAYS = "affected_days"


@dataclass(frozen=True)
class ConversationGroup:
    days: dg.DailyPartitionsDefinition
    nocodb_sync: dg.AssetsDefinition
    conversations: dg.AssetsDefinition
    messages: dg.AssetsDefinition
    translations: dg.AssetsDefinition
    categories: dg.AssetsDefinition
    user_analytics: dg.AssetsDefinition
    analytics_reports: dg.AssetsDefinition
    model_reports: dg.AssetsDefinition
    nocodb_sensor: dg.SensorDefinition

    @property
    def daily(self) -> list[dg.AssetsDefinition]:
        return [self.conversations, self.messages, self.translations, self.categories]

    @property
    def assets(self) -> list[dg.AssetsDefinition]:
        return [
            self.nocodb_sync,
            *self.daily,
            self.user_analytics,
            self.analytics_reports,
            self.model_reports,
        ]


def build_conversation_group(
    settings: ConversationSettings, sensor_interval_seconds: int
) -> ConversationGroup:
    """The group's assets and sensor: daily partitions from CONVERSATIONS_START_DATE, the categorizer's pool
    when it is Gemini, the sensor looking every `sensor_interval_seconds`."""
    days = dg.DailyPartitionsDefinition(start_date=settings.start_date)
    daily = [
        *(_daily_table_asset(days, table) for table in DAILY_TABLES),
        _categories_asset(days, settings.categorizer),
    ]
    return ConversationGroup(
        days,
        nocodb_sync,
        *daily,
        user_analytics,
        analytics_reports,
        model_reports,
        _nocodb_sensor(days, daily, sensor_interval_seconds),
    )


def _daily(days: dg.DailyPartitionsDefinition, schema: pa.Schema, **extra) -> dict:
    return {
        "partitions_def": days,
        "deps": ["nocodb_sync"],
        "group_name": GROUP,
        "io_manager_key": IO_MANAGER,
        "metadata": {LAYOUT_METADATA: DAILY_HIVE, **table_metadata(schema)},
        "kinds": {"parquet"},
        **extra,
    }


@dg.asset(group_name=GROUP, kinds={"nocodb"})
def nocodb_sync(
    nocodb: NocoDBResource, conversation_storage: StoreResource, conversation_options: ConversationOptions
) -> dg.MaterializeResult:
    """What changed in NocoDB since the last sync: conversations and messages with a new Id or a newer
    UpdatedAt, merged batch by batch into per-day raw files (the latest version of each row wins). Progress
    is saved after each batch, so a sync that dies resumes where it stopped."""
    synced = sync(
        nocodb.pages(nocodb.client()),
        conversation_storage.store(),
        conversation_options.batch_size,
        anonymiser=conversation_options.anonymiser(),
    )
    changed = sorted(day.isoformat() for day in synced.days)
    return dg.MaterializeResult(
        metadata={
            "conversations": synced.rows["conversations"],
            "messages": synced.rows["messages"],
            "batches": synced.batches,
            "resumed": synced.resumed,
            "rejected": counts_table(synced.rejected),
            "anonymised": counts_table(synced.anonymised, "kind")
            if conversation_options.anonymize
            else "off (ANONYMIZE)",
            AFFECTED_DAYS: dg.MetadataValue.json(changed),
        }
    )


@dataclass(frozen=True)
class DailyTable:
    """A daily table built from the day's raw rows alone: its asset, MongoDB collection and meaning."""

    name: str
    schema: pa.Schema
    collection: str
    build: Callable[[Store, date], pd.DataFrame]
    meaning: str
    counted_by: str | None = None  # a column whose value counts the metadata shows


def _day_conversations(store: Store, day: date) -> pd.DataFrame:
    return analytics.conversation_analytics(_raw(store, "conversations", day), _raw(store, "messages", day))


def _day_messages(store: Store, day: date) -> pd.DataFrame:
    return analytics.message_analytics(_raw(store, "messages", day))


def _day_translations(store: Store, day: date) -> pd.DataFrame:
    return analytics.translations(_raw(store, "messages", day))


DAILY_TABLES = (
    DailyTable(
        "conversations",
        analytics.CONVERSATIONS_SCHEMA,
        "conversation_analytics",
        _day_conversations,
        "One row per conversation started that day (UTC): learner, channel, language, status, message counts "
        "by side, duration, words, and how fast the tutor answered (first, mean, median seconds).",
    ),
    DailyTable(
        "messages",
        analytics.MESSAGES_SCHEMA,
        "conversation_messages",
        _day_messages,
        "Every message of the day's conversations, with its position, length, words, whether it has a "
        "translation, and for a reply the seconds since the other side's last message.",
        counted_by="role",
    ),
    DailyTable(
        "translations",
        analytics.TRANSLATIONS_SCHEMA,
        "conversation_translations",
        _day_translations,
        "The day's messages that came with an English translation: original text and language beside it.",
        counted_by="language",
    ),
)


def _daily_table_asset(days: dg.DailyPartitionsDefinition, table: DailyTable) -> dg.AssetsDefinition:
    @dg.asset(name=table.name, description=table.meaning, **_daily(days, table.schema))
    def daily_table(
        context: dg.AssetExecutionContext,
        conversation_storage: StoreResource,
        mongo: MongoResource,
        conversation_options: ConversationOptions,
    ):
        rows = table.build(conversation_storage.store(), _day(context))
        if table.counted_by:
            counts = counts_table(_counts(rows, table.counted_by), table.counted_by)
            context.add_output_metadata({f"by_{table.counted_by}": counts})
        return _publish_day(context, mongo, table.collection, rows, conversation_options)

    return daily_table


def _categories_asset(days: dg.DailyPartitionsDefinition, categorizer: str) -> dg.AssetsDefinition:
    @dg.asset(**_daily(days, CATEGORIES_SCHEMA, pool=GEMINI_POOL if categorizer == "gemini" else None))
    def categories(
        context: dg.AssetExecutionContext,
        conversation_storage: StoreResource,
        mongo: MongoResource,
        conversation_options: ConversationOptions,
        gemini: GeminiResource,
    ):
        """Topic, intent and sentiment of each of the day's conversations, each with a confidence in [0, 1],
        from what the learner wrote (the English translation where there is one): by deterministic rules, or by
        Gemini with CONVERSATION_CATEGORIZER=gemini (then `error` says why a conversation has none)."""
        if conversation_options.categorizer != categorizer:
            # The pool is part of the asset's definition: Gemini calls without it would not share its budget.
            raise dg.Failure(
                description=f"the categories asset was built for the {categorizer} categorizer but the resource "
                f"says {conversation_options.categorizer}: build the group from the same settings as its "
                "resources (the code location does)"
            )
        texts = _learner_texts(_raw(conversation_storage.store(), "messages", _day(context)))
        if conversation_options.categorizer == "gemini":
            found = categorize_with_model(
                texts, _categories_model(gemini), conversation_storage.store(), gemini.model
            )
            context.add_output_metadata(
                {
                    "model_calls": found.calls,
                    "cache_hits": found.cache_hits,
                    "failed": counts_table(_counts(pd.DataFrame({"e": list(found.errors.values())}), "e")),
                }
            )
            categorized, errors = found.categories, found.errors
        else:
            categorized, errors = {cid: categorize(lines) for cid, lines in texts.items()}, {}
        table = categories_table(list(texts), categorized, errors, conversation_options.categorizer)
        context.add_output_metadata({"topics": counts_table(_counts(table, "topic"), "topic")})
        return _publish_day(context, mongo, "conversation_categories", table, conversation_options)

    return categories


def _learner_texts(raw: pd.DataFrame) -> dict[str, list[str]]:
    """What the learner wrote in each conversation, in order (the English translation where there is one)."""
    learner = raw[raw["role"] == "user"].sort_values(["conversation_id", "sent_at", "Id"], kind="stable")
    words = learner["translated_text"].fillna(learner["text"])
    return {cid: list(lines) for cid, lines in words.groupby(learner["conversation_id"], sort=True)}


# The all-days tables follow any day that changes.
ALL_DAYS = {
    "group_name": GROUP,
    "deps": ["conversations", "categories"],
    "io_manager_key": IO_MANAGER,
    "automation_condition": dg.AutomationCondition.eager(),
    "kinds": {"parquet"},
}


@dg.asset(**ALL_DAYS, metadata=table_metadata(analytics.USER_ANALYTICS_SCHEMA))
def user_analytics(
    context: dg.AssetExecutionContext, conversation_storage: StoreResource, mongo: MongoResource
):
    """One row per learner over every stored day: conversations, messages, average duration and response
    time, first and last seen, active days, languages, their most frequent topic and share of negative ones."""
    table = analytics.user_analytics(*_stored_conversations_and_categories(conversation_storage.store()))
    _to_mongo(context, mongo, "user_analytics", table)
    return table


@dg.asset(**ALL_DAYS, metadata=table_metadata(analytics.REPORTS_SCHEMA))
def analytics_reports(
    context: dg.AssetExecutionContext, conversation_storage: StoreResource, mongo: MongoResource
):
    """Daily, weekly (Monday to Sunday) and monthly aggregates built from the daily tables: conversations,
    messages, learners, average duration and response time, top topic, positive and negative shares."""
    table = analytics.reports(*_stored_conversations_and_categories(conversation_storage.store()))
    _to_mongo(context, mongo, "analytics_reports", table)
    context.add_output_metadata({"by_period": counts_table(_counts(table, "period"), "period")})
    return table


@dg.asset(**{**ALL_DAYS, "deps": ["messages"]}, metadata=table_metadata(analytics.MODEL_REPORTS_SCHEMA))
def model_reports(
    context: dg.AssetExecutionContext, conversation_storage: StoreResource, mongo: MongoResource
):
    """Each assistant model's (or agent's) performance per day, week and month, from every stored day's
    messages: replies and conversations, seconds from the learner's message to the reply (mean, median), reply
    length in words, and the learners' ratings where NocoDB has them (`model` and `rating` fields)."""
    table = analytics.model_reports(
        _all_days(conversation_storage.store(), "messages", analytics.MESSAGES_SCHEMA)
    )
    _to_mongo(context, mongo, "model_reports", table)
    context.add_output_metadata(
        {"by_model": counts_table(_counts(table[table["period"] == "monthly"], "model"), "model")}
    )
    return table


def _stored_conversations_and_categories(store) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        _all_days(store, "conversations", analytics.CONVERSATIONS_SCHEMA),
        _all_days(store, "categories", CATEGORIES_SCHEMA),
    )


def _nocodb_sensor(
    days: dg.DailyPartitionsDefinition, daily: list[dg.AssetsDefinition], interval_seconds: int
) -> dg.SensorDefinition:
    @dg.sensor(
        target=[nocodb_sync.key, *(asset.key for asset in daily)],
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def nocodb_sensor(
        context: dg.SensorEvaluationContext, nocodb: NocoDBResource, conversation_storage: StoreResource
    ) -> dg.SensorResult | dg.SkipReason:
        """Polls NocoDB for conversations or messages new or updated since the last sync and requests a sync;
        after each sync, requests the daily tables of exactly the days it changed."""
        if not nocodb.configured:
            return dg.SkipReason("NocoDB is not configured (NOCODB_BASE_URL, NOCODB_API_TOKEN, ...)")
        cursor = json.loads(context.cursor or "{}")
        records = context.instance.fetch_materializations(
            nocodb_sync.key, limit=25, cursor=cursor.get("syncs"), ascending=True
        )
        requests = [
            request for record in records.records for request in _day_requests(context, record, days, daily)
        ]
        if records.records:
            cursor["syncs"] = records.cursor
        pending = _pending_change(nocodb, conversation_storage)
        if pending:
            requests.append(dg.RunRequest(asset_selection=[nocodb_sync.key], run_key=f"sync:{pending}"))
        return dg.SensorResult(
            run_requests=requests,
            cursor=json.dumps(cursor, sort_keys=True),
            skip_reason=None if requests else "nothing new or updated in NocoDB since the last sync",
        )

    return nocodb_sensor


def _categories_model(gemini: GeminiResource) -> GeminiClient:
    return GeminiClient(
        gemini.client(),
        gemini.model,
        rpm=gemini.rpm,
        concurrency=gemini.concurrency,
        window_seconds=gemini.rate_window_seconds,
        config=model_config(gemini.model),
        validate=validated_categories,
    )


def _day_requests(
    context: dg.SensorEvaluationContext, record, days: dg.DailyPartitionsDefinition, daily: list
) -> list[dg.RunRequest]:
    materialization = record.asset_materialization
    changed = materialization.metadata.get(AFFECTED_DAYS)
    known = set(days.get_partition_keys())
    requests = []
    for day in changed.value if changed else []:
        if day not in known:
            context.log.warning(
                f"conversations of {day} are outside the daily partitions (CONVERSATIONS_START_DATE)"
            )
            continue
        requests.append(
            dg.RunRequest(
                partition_key=day,
                asset_selection=[asset.key for asset in daily],
                run_key=f"day:{record.storage_id}:{day}",
            )
        )
    return requests


def _pending_change(nocodb: NocoDBResource, conversation_storage: StoreResource) -> str | None:
    """A short description of the first change NocoDB holds beyond the committed watermark (it names the
    sync run, so the same change never starts two), or of an interrupted sync to resume; None if nothing."""
    state = load_state(conversation_storage.store())
    if state.get("in_progress"):
        return "resume:" + json.dumps(state["in_progress"], sort_keys=True)
    source = nocodb.pages(nocodb.client())
    for table in ("conversations", "messages"):
        watermark = state.get(table, {})
        first_page = next(
            iter(source(table, watermark.get("last_id"), watermark.get("last_updated"), None)), []
        )
        if first_page:
            newest = max(first_page, key=lambda row: (row.get("UpdatedAt") or "", row["Id"]))
            return f"{table}:{watermark}:{newest['Id']}:{newest.get('UpdatedAt')}"
    return None


def _day(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def _raw(store, table: str, day: date) -> pd.DataFrame:
    stored = read_raw_day(store, table, day)
    return parse_rows(table, []).rows if stored is None else stored


def _all_days(store, daily: str, schema: pa.Schema) -> pd.DataFrame:
    """Every stored day of a daily table, read with the schema the asset declares (every day has it)."""
    return read_parquet(store, layout.day_part_keys(store, daily), schema=schema).to_pandas()


def _declared(asset: dg.AssetsDefinition) -> pa.Schema:
    return declared_schema(asset.specs_by_key[asset.key].metadata)


def _counts(table: pd.DataFrame, column: str) -> dict[str, int]:
    return {str(key): int(count) for key, count in table[column].value_counts().items()} if len(table) else {}


def _publish_day(
    context,
    mongo: MongoResource,
    collection: str,
    table: pd.DataFrame,
    options: ConversationOptions,
):
    """What every daily table does with its rows: upsert them to MongoDB (when configured) and hand the
    I/O manager the day's Parquet parts (it reports their rows, files and preview)."""
    # Parts first: a table that drifts from its schema reaches neither MongoDB nor storage.
    asset = context.asset_key.to_user_string()
    parts = day_parts(table, _declared(context.assets_def), asset, options.parquet())
    try:
        _to_mongo(context, mongo, collection, table)
    except BaseException:
        parts.discard()
        raise
    return parts


def _to_mongo(context, mongo: MongoResource, collection: str, table: pd.DataFrame) -> None:
    with mongo.store() as store:
        if store is None:
            context.add_output_metadata({"mongodb": "skipped (MONGODB_URI not set)"})
            return
        counts = store.upsert(collection, table.to_dict("records"))
        context.add_output_metadata({"mongodb": f"{collection}: {counts}"})
