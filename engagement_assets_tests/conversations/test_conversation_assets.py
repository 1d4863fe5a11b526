"""The conversation group through `dg.materialize` on a real instance: a fake NocoDB over HTTP (the real
client), the real Parquet I/O manager on a temporary folder or the local S3 server, the pymongo store through
the MongoDB wire stand-in, and the sensor."""

from __future__ import annotations

import io
import secrets
import shutil
from datetime import date

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engagement_assets.conversations import analytics
from engagement_assets.conversations.assets import AFFECTED_DAYS, build_conversation_group
from engagement_assets.conversations.categorize import CATEGORIES_SCHEMA
from engagement_assets.conversations.collect import load_state, read_raw_day
from engagement_assets.conversations.resources import conversation_resources
from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.devtools.conversation_demo import sync_and_build
from engagement_assets.devtools.conversation_sample import generate
from engagement_assets.devtools.fake_nocodb import FakeNocoDB
from engagement_assets.platform.metadata import declared_schema
from engagement_assets.platform.resources import gemini_resource
from engagement_assets.settings import Settings
from engagement_assets.storage import layout
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.store import open_store
from engagement_assets_tests.conversations.fake_mongod import FakeMongod
from engagement_assets_tests.fake_gemini import FakeGemini

TOKEN = f"nocodb-{secrets.token_hex(8)}"
CONVERSATIONS = 40
SEED = 3
# Before the generated days (2024-03-04 to 06), so NocoDB has nothing of it and its file is the first a glob
# lists: readers take the schema of a dataset from its first file.
EMPTY_DAY = "2024-03-01"
# The group's assets as the code location builds them by default (the categorizer is chosen per run by its
# resource, so one build serves every test).
group = build_conversation_group(ConversationSettings(), sensor_interval_seconds=30)
SCHEMAS = {
    group.conversations: analytics.CONVERSATIONS_SCHEMA,
    group.messages: analytics.MESSAGES_SCHEMA,
    group.translations: analytics.TRANSLATIONS_SCHEMA,
    group.categories: CATEGORIES_SCHEMA,
    group.user_analytics: analytics.USER_ANALYTICS_SCHEMA,
    group.analytics_reports: analytics.REPORTS_SCHEMA,
    group.model_reports: analytics.MODEL_REPORTS_SCHEMA,
}


@pytest.fixture
def nocodb():
    with FakeNocoDB(token=TOKEN) as fake:
        tables = {name: fake.create_table(name) for name in ("conversations", "messages")}
        conversation_rows, message_rows = generate(conversations=CONVERSATIONS, days=3, seed=SEED)
        fake.add_rows(tables["conversations"], conversation_rows)
        fake.add_rows(tables["messages"], message_rows)
        fake.tables = tables
        fake.message_count = len(message_rows)
        yield fake


class Group:
    """The group's resources for one configuration, and helpers to run it and read what it stored."""

    def __init__(self, instance, env: dict, warehouse: str):
        self.instance = instance
        self.settings = ConversationSettings.from_env(env)
        platform = Settings.from_env({**env, "ENGAGEMENT_STORAGE_URL": warehouse})
        self.resources = {
            **conversation_resources(self.settings, platform),
            "gemini": gemini_resource(platform),
        }
        self.store = open_store(self.settings.storage_url or warehouse)
        # Built from the same settings as the resources, as the code location builds it.
        self.group = build_conversation_group(self.settings, sensor_interval_seconds=30)

    def build(self) -> list[str]:
        return sync_and_build(self.group, self.instance, self.resources)

    def sync(self):
        return dg.materialize(
            self.group.assets,
            selection=[self.group.nocodb_sync],
            instance=self.instance,
            resources=self.resources,
            raise_on_error=False,
        )

    def materialize(self, selection, partition_key: str | None = None):
        return dg.materialize(
            self.group.assets,
            selection=selection,
            partition_key=partition_key,
            instance=self.instance,
            resources=self.resources,
        )

    def table(self, name: str) -> pd.DataFrame:
        """Every day of a daily table, read as one dataset: it fails unless all days share one schema."""
        return read_parquet(self.store, layout.day_part_keys(self.store, name)).to_pandas()


@pytest.fixture
def make_group(nocodb, instance, tmp_path, monkeypatch):
    monkeypatch.setenv("NOCODB_API_TOKEN", TOKEN)

    def make(**extra: str) -> Group:
        env = {
            "NOCODB_BASE_URL": nocodb.url,
            "NOCODB_API_TOKEN": TOKEN,
            "NOCODB_PROJECT_ID": nocodb.base_id,
            "NOCODB_CONVERSATION_TABLE": nocodb.tables["conversations"],
            "NOCODB_MESSAGES_TABLE": nocodb.tables["messages"],
            "NOCODB_PAGE_SIZE": "25",
            "BATCH_SIZE": "30",
            **extra,
        }
        return Group(instance, env, str(tmp_path / "warehouse"))

    return make


def test_daily_hive_parquet_on_s3_with_the_configured_compression_and_row_groups(make_group, nocodb, bucket):
    group_ = make_group(
        S3_BUCKET=bucket, S3_PREFIX="analytics", PARQUET_COMPRESSION="zstd", PARQUET_ROW_GROUP_SIZE="4"
    )
    days = group_.build()
    assert days and all(date.fromisoformat(day) for day in days)

    parts = [f.key for f in group_.store.list_files("conversations/year=2024/")]
    assert parts and all(key.endswith("part-00000.parquet") for key in parts)
    assert {key.split("/day=")[0] for key in parts} == {"conversations/year=2024/month=03"}
    assert group_.store.uri(parts[0]).startswith(
        f"s3://{bucket}/analytics/conversations/year=2024/month=03/day="
    )
    metadata = pq.ParquetFile(io.BytesIO(group_.store.read_bytes(parts[0]))).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    assert all(metadata.row_group(i).num_rows <= 4 for i in range(metadata.num_row_groups))

    conversations = group_.table("conversations")
    assert len(conversations) == CONVERSATIONS and conversations["conversation_id"].is_unique
    messages = group_.table("messages")
    assert len(messages) == nocodb.message_count and messages["message_id"].is_unique
    assert group_.table("categories")["conversation_id"].is_unique
    assert set(group_.table("translations")["language"]) <= {"hi", "kn"}
    users = pd.read_parquet(io.BytesIO(group_.store.read_bytes("user_analytics.parquet")))
    assert users["conversations"].sum() == CONVERSATIONS
    reports = pd.read_parquet(io.BytesIO(group_.store.read_bytes("analytics_reports.parquet")))
    assert set(reports["period"]) == {"daily", "weekly", "monthly"}
    assert (reports.groupby("period")["conversations"].sum() == CONVERSATIONS).all()


def test_a_rerun_changes_nothing_and_an_update_reaches_only_its_day(make_group, nocodb):
    group_ = make_group()
    group_.build()
    before = group_.table("conversations").sort_values("conversation_id").reset_index(drop=True)
    assert group_.build() == [], "nothing changed in NocoDB: no day to rebuild"
    after = group_.table("conversations").sort_values("conversation_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)

    row = nocodb_row(nocodb, "conversations", "c-00005")
    nocodb.update_row(nocodb.tables["conversations"], row["Id"], status="escalated")
    changed = group_.build()
    assert changed == [row["started_at"][:10]]
    updated = group_.table("conversations").set_index("conversation_id")
    assert updated.loc["c-00005", "status"] == "escalated" and len(updated) == CONVERSATIONS


def test_an_interrupted_sync_resumes_without_loss_or_duplicates(make_group, nocodb):
    group_ = make_group(MAX_RETRIES="1", BATCH_SIZE="10", NOCODB_PAGE_SIZE="10")
    # Two pages of conversations go through, then the server answers 503 to every retry.
    nocodb.fail_next(503, 503, after=2)
    failed = group_.sync()
    assert not failed.success
    assert "503" in failure_message(failed) and TOKEN not in failure_message(failed)
    state = load_state(group_.store)
    assert state["in_progress"]["conversations"]["cursor"] == 20
    assert len(stored_conversations(group_)) == 20

    resumed = group_.sync()
    assert resumed.success
    (event,) = resumed.get_asset_materialization_events()
    assert event.materialization.metadata["resumed"].value is True
    assert event.materialization.metadata["conversations"].value == CONVERSATIONS - 20
    stored = stored_conversations(group_)
    assert len(stored) == CONVERSATIONS and stored.is_unique
    assert not load_state(group_.store)["in_progress"]


def test_the_operational_store_gets_every_table_once(make_group, nocodb, monkeypatch):
    with FakeMongod() as mongod:
        monkeypatch.setenv("MONGODB_URI", mongod.uri)
        group_ = make_group(MONGODB_URI=mongod.uri, MONGODB_DATABASE="analytics")
        group_.build()
        group_.build()  # nothing new: nothing duplicated
        from pymongo import MongoClient

        with MongoClient(mongod.uri) as client:
            database = client["analytics"]
            assert database["conversation_analytics"].count_documents({}) == CONVERSATIONS
            assert database["conversation_messages"].count_documents({}) == nocodb.message_count
            assert database["conversation_categories"].count_documents({}) == len(group_.table("categories"))
            learners = pd.read_parquet(io.BytesIO(group_.store.read_bytes("user_analytics.parquet")))
            assert database["user_analytics"].count_documents({}) == len(learners)
            assert database["analytics_reports"].count_documents({"period": "monthly"}) == 1
            names = {index["name"] for index in database["conversation_analytics"].list_indexes()}
            assert any("conversation_id" in name for name in names)


def test_the_collections_take_their_configured_names(make_group, monkeypatch):
    with FakeMongod() as mongod:
        monkeypatch.setenv("MONGODB_URI", mongod.uri)
        group_ = make_group(
            MONGODB_URI=mongod.uri, MONGODB_DATABASE="analytics", MONGODB_CONVERSATIONS_COLLECTION="convs"
        )
        group_.build()
        from pymongo import MongoClient

        with MongoClient(mongod.uri) as client:
            names = set(client["analytics"].list_collection_names())
            assert "convs" in names and "conversation_analytics" not in names
            assert client["analytics"]["convs"].count_documents({}) == CONVERSATIONS


def test_the_sensor_requests_a_sync_then_exactly_the_changed_days(make_group, nocodb, instance):
    group_ = make_group()
    first = group.nocodb_sensor(dg.build_sensor_context(instance=instance, resources=group_.resources))
    assert [request.asset_selection for request in first.run_requests] == [[group.nocodb_sync.key]]

    synced = group_.sync()
    (event,) = synced.get_asset_materialization_events()
    changed = event.materialization.metadata[AFFECTED_DAYS].value
    second = group.nocodb_sensor(
        dg.build_sensor_context(instance=instance, resources=group_.resources, cursor=first.cursor)
    )
    assert sorted(request.partition_key for request in second.run_requests) == sorted(changed)
    assert all(
        set(request.asset_selection) == {a.key for a in group.daily} for request in second.run_requests
    )
    third = group.nocodb_sensor(
        dg.build_sensor_context(instance=instance, resources=group_.resources, cursor=second.cursor)
    )
    assert third.run_requests == []


def test_the_token_is_never_stored(make_group, instance, tmp_path):
    group_ = make_group()
    group_.build()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def nocodb_row(nocodb, table: str, conversation_id: str) -> dict:
    from engagement_assets.conversations.nocodb import NocoDBClient

    client = NocoDBClient(nocodb.url, TOKEN, nocodb.base_id)
    rows = [row for page in client.iter_pages(nocodb.tables[table]) for row in page]
    return next(row for row in rows if row.get("conversation_id") == conversation_id)


def stored_conversations(group_: Group) -> pd.Series:
    found = []
    for day in range(1, 32):
        frame = read_raw_day(group_.store, "conversations", date(2024, 3, day))
        if frame is not None:
            found.extend(frame["conversation_id"])
    return pd.Series(found)


def test_a_refused_token_fails_the_sync_clearly(make_group, monkeypatch):
    group_ = make_group()
    monkeypatch.setenv("NOCODB_API_TOKEN", "not-the-token")
    result = group_.sync()
    assert not result.success
    message = failure_message(result)
    assert "401" in message or "token" in message.lower()
    assert "not-the-token" not in message


def failure_message(result) -> str:
    failures = [event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE]
    return " ".join(event.step_failure_data.error.to_string() for event in failures)


def test_the_gemini_categorizer_answers_validated_cached_and_never_paid_twice(
    make_group, nocodb, clean_gemini_env, monkeypatch
):
    with FakeGemini(rpm=10_000) as fake:
        monkeypatch.setenv("GEMINI_API_KEY", "test-key")
        group_ = make_group(
            CONVERSATION_CATEGORIZER="gemini", GEMINI_API_KEY="test-key", GEMINI_BASE_URL=fake.url
        )
        fake.fail_next("out_of_range")  # one answer outside the schema's ranges
        group_.build()
        categories = group_.table("categories")
        assert set(categories["categorizer"]) == {"gemini"}
        failed = categories[categories["error"].notna()]
        assert len(failed) == 1 and "topic_confidence" in failed["error"].iloc[0]
        answered = categories[categories["error"].isna()]
        assert answered["topic_confidence"].between(0, 1).all()
        # Text only: no audio part, and the learner's words in the prompt.
        assert all(request.mime_type is None and request.body["contents"] for request in fake.requests)
        # One request per distinct learner text: conversations that say the same thing share an answer.
        first_calls = len(fake.requests)
        learner = (
            group_.table("messages").query("role == 'user'").sort_values(["conversation_id", "position"])
        )
        prompts = (
            learner["translated_text"]
            .fillna(learner["text"])
            .groupby(learner["conversation_id"])
            .agg("\n".join)
        )
        assert first_calls == prompts.nunique() < len(categories) + 1

        # Rebuilding every day asks again only for the conversation whose answer was refused.
        for day in sorted({str(day) for day in group_.table("conversations")["conversation_date"]}):
            group_.materialize([group.categories], partition_key=day)
        assert len(fake.requests) == first_calls + 1


@pytest.mark.parametrize("asset", list(SCHEMAS), ids=lambda asset: asset.key.to_user_string())
def test_every_stored_table_declares_its_schema_for_the_ui_and_the_io_manager(asset):
    assert declared_schema(asset.specs_by_key[asset.key].metadata) == SCHEMAS[asset]
    assert not any(pa.types.is_null(field.type) for field in SCHEMAS[asset])


@pytest.fixture
def with_an_empty_day(make_group) -> tuple[Group, list[str]]:
    """The group built from NocoDB, plus the daily tables of a day NocoDB has nothing of."""
    group_ = make_group()
    full_days = group_.build()
    group_.materialize(group.daily, partition_key=EMPTY_DAY)
    return group_, full_days


def test_an_empty_day_is_stored_with_exactly_the_schema_of_a_full_day(with_an_empty_day):
    group_, full_days = with_an_empty_day
    for asset in group.daily:
        name = asset.key.to_user_string()
        (empty,) = group_.store.list_files(layout.day_folder(name, EMPTY_DAY))
        assert pq.ParquetFile(group_.store.path(empty.key)).metadata.num_rows == 0
        for day in (*full_days, EMPTY_DAY):
            for part in group_.store.list_files(layout.day_folder(name, day)):
                assert pq.read_schema(group_.store.path(part.key)) == SCHEMAS[asset], part.key


def test_duckdb_reads_every_day_of_each_table_as_one_without_merging_schemas(with_an_empty_day):
    group_, full_days = with_an_empty_day
    with duckdb.connect() as db:
        for asset in group.daily:
            name = asset.key.to_user_string()
            glob = group_.store.uri(layout.day_parts_glob(name))
            files = db.execute(f"SELECT file FROM glob('{glob}')").fetchall()
            assert len(files) == len(layout.day_part_keys(group_.store, name)) >= len(full_days) + 1
            rows = db.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall()[0][0]
            assert rows == len(group_.table(name))
            days = db.execute(f"SELECT DISTINCT day FROM read_parquet('{glob}')").fetchall()
            assert len(days) == len(full_days), "the empty day adds a file but no rows"
            columns = db.execute(f"DESCRIBE FROM read_parquet('{glob}', hive_partitioning = false)")
            assert [column[0] for column in columns.fetchall()] == SCHEMAS[asset].names


def test_a_tables_folder_holds_its_parts_and_nothing_else(with_an_empty_day):
    group_, _ = with_an_empty_day
    for asset in group.daily:
        name = asset.key.to_user_string()
        stored = [f.key for f in group_.store.list_files(f"{name}/")]
        assert stored == layout.day_part_keys(group_.store, name)
    # The sync's own files (state, raw days) live in a folder that is no table's.
    state = [f.key for f in group_.store.list_files(f"{group.nocodb_sync.key.to_user_string()}/")]
    tables = {asset.key.to_user_string() for asset in SCHEMAS}
    assert state and not {key.split("/")[0] for key in state} & tables


def test_the_all_days_tables_of_no_stored_day_are_empty_tables_of_their_schema(make_group):
    group_ = make_group()
    group_.materialize([group.user_analytics, group.analytics_reports, group.model_reports])
    for asset in (group.user_analytics, group.analytics_reports, group.model_reports):
        stored = pq.read_table(group_.store.path(layout.table_file(asset.key.to_user_string())))
        assert stored.num_rows == 0 and stored.schema == SCHEMAS[asset]


ANONYMISE_KEY = "anonymise-key-0123456789abcdef"
PLANTED = {
    "user_id": "learner-planted-4242",
    "email": "jane.doe+tutor@example.org",
    "phone": "+91 98765 43210",
    "roll": "ROLL-2024-0099",
}


def plant_personal_data(nocodb) -> None:
    start = "2024-03-05 09:00:00+00:00"
    nocodb.add_rows(
        nocodb.tables["conversations"],
        [
            {
                "conversation_id": "c-planted",
                "user_id": PLANTED["user_id"],
                "channel": "whatsapp",
                "language": "en",
                "started_at": start,
                "ended_at": "2024-03-05 09:10:00+00:00",
                "status": "closed",
            }
        ],
    )
    text = f"mail me at {PLANTED['email']} or call {PLANTED['phone']}, my roll is {PLANTED['roll']}"
    nocodb.add_rows(
        nocodb.tables["messages"],
        [
            {
                "message_id": "m-planted",
                "conversation_id": "c-planted",
                "user_id": PLANTED["user_id"],
                "role": "user",
                "text": text,
                "language": "en",
                "translated_text": text,
                "sent_at": start,
            },
            # Rejected (no sent_at): its row is kept for a person to find, so it must be anonymised too.
            {
                "message_id": "m-planted-bad",
                "conversation_id": "c-planted",
                "user_id": PLANTED["user_id"],
                "role": "user",
                "text": text,
                "language": "en",
                "sent_at": None,
            },
        ],
    )


def stored_bytes(*roots) -> list[bytes]:
    return [path.read_bytes() for root in roots for path in root.rglob("*") if path.is_file()]


def test_with_anonymisation_no_raw_id_or_planted_personal_data_is_stored_anywhere(
    make_group, nocodb, monkeypatch, tmp_path
):
    monkeypatch.setenv("ANONYMIZE_SECRET", ANONYMISE_KEY)
    plant_personal_data(nocodb)
    with FakeMongod() as mongod:
        monkeypatch.setenv("MONGODB_URI", mongod.uri)
        group_ = make_group(
            ANONYMIZE="true",
            ANONYMIZE_SECRET=ANONYMISE_KEY,
            ANONYMIZE_PATTERNS=r"ROLL-\d{4}-\d{4}",
            MONGODB_URI=mongod.uri,
            MONGODB_DATABASE="analytics",
        )
        group_.build()
        from pymongo import MongoClient

        with MongoClient(mongod.uri) as client:
            database = client["analytics"]
            documents = repr([list(database[name].find({})) for name in database.list_collection_names()])
    conversations, _ = generate(conversations=CONVERSATIONS, days=3, seed=SEED)
    raw_ids = {row["user_id"] for row in conversations} | {PLANTED["user_id"]}
    everything = stored_bytes(tmp_path)  # the warehouse and the Dagster instance
    for value in [*PLANTED.values(), *raw_ids, ANONYMISE_KEY]:
        assert not any(value.encode() in data for data in everything), value
        assert value not in documents, value
    assert group_.table("conversations")["user_id"].str.startswith("anon-").all()
    messages = group_.table("messages")
    planted = messages.loc[messages["message_id"] == "m-planted", "text"].iloc[0]
    assert "[email removed]" in planted and "[phone removed]" in planted and "[pattern removed]" in planted
    (synced,) = group_.instance.fetch_materializations(group.nocodb_sync.key, limit=1).records
    counts = synced.asset_materialization.metadata["anonymised"].value
    assert all(f"| {kind} |" in counts for kind in ("user_id", "email", "phone", "pattern", "rejected_row"))


def test_the_keyed_hash_is_stable_across_runs(make_group, nocodb, monkeypatch, tmp_path):
    # (That another key gives other hashes is the anonymiser's own test.)
    monkeypatch.setenv("ANONYMIZE_SECRET", ANONYMISE_KEY)
    first = make_group(ANONYMIZE="true", ANONYMIZE_SECRET=ANONYMISE_KEY)
    first.build()
    ids = set(first.table("conversations")["user_id"])
    shutil.rmtree(tmp_path / "warehouse")
    again = make_group(ANONYMIZE="true", ANONYMIZE_SECRET=ANONYMISE_KEY)
    again.build()
    assert set(again.table("conversations")["user_id"]) == ids and all(i.startswith("anon-") for i in ids)


def test_configured_id_and_update_fields_are_followed_everywhere(make_group, nocodb):
    # A base whose own row id ("seq", ten times NocoDB's) and change time ("modified") are other fields.
    stamp = "2024-03-01 00:00:00+00:00"
    conversation_rows, message_rows = generate(conversations=CONVERSATIONS, days=3, seed=SEED)
    tables = {}
    for name, rows in (("conversations", conversation_rows), ("messages", message_rows)):
        tables[name] = nocodb.create_table(f"{name}-custom")
        nocodb.add_rows(
            tables[name], [{**row, "seq": 10 * (n + 1), "modified": stamp} for n, row in enumerate(rows)]
        )
    group_ = make_group(
        NOCODB_ID_FIELD="seq",
        NOCODB_UPDATED_FIELD="modified",
        NOCODB_CONVERSATION_TABLE=tables["conversations"],
        NOCODB_MESSAGES_TABLE=tables["messages"],
    )
    group_.build()
    state = load_state(group_.store)
    assert state["conversations"]["last_id"] == 10 * len(conversation_rows)
    assert state["messages"]["last_id"] == 10 * len(message_rows)
    # The merge keeps the latest version by the configured change time: it reached the stored rows.
    stored = group_.table("conversations")
    assert (stored["UpdatedAt"] == pd.Timestamp(stamp).tz_localize(None)).all()
    assert (stored["Id"] % 10 == 0).all() and stored["Id"].max() <= 10 * len(conversation_rows)


def test_a_gemini_categorizer_on_an_asset_built_without_the_gemini_pool_is_refused(make_group, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    group_ = make_group(CONVERSATION_CATEGORIZER="gemini", GEMINI_API_KEY="test-key")
    group_.group = group  # built for the rules categorizer, as code that mixes settings would
    group_.sync()
    with pytest.raises(dg.Failure, match="built for the rules categorizer"):
        group_.materialize([group.categories], partition_key="2024-03-04")


def test_each_assistant_model_is_reported_per_day_week_and_month(make_group, nocodb):
    group_ = make_group()
    group_.build()
    reports = pd.read_parquet(io.BytesIO(group_.store.read_bytes("model_reports.parquet")))
    messages = group_.table("messages")
    replies = messages[messages["role"] == "assistant"]
    assert set(reports["period"]) == {"daily", "weekly", "monthly"}
    monthly = reports[reports["period"] == "monthly"].set_index("model")
    assert monthly["replies"].to_dict() == replies["model"].value_counts().to_dict()
    ratings = pd.to_numeric(replies["rating"], errors="coerce")
    for model, row in monthly.iterrows():
        mine = ratings[replies["model"] == model]
        assert row["rated_replies"] == mine.count() and row["avg_rating"] == pytest.approx(mine.mean())
        own = replies.loc[replies["model"] == model, "response_seconds"]
        assert row["median_response_seconds"] == pytest.approx(own.median())
    daily = reports[reports["period"] == "daily"]
    assert daily["replies"].sum() == len(replies)
