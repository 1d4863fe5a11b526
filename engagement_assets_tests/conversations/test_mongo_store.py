"""The MongoDB store over real sockets: pymongo talks to the wire-protocol stand-in as it would to mongod."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError, OperationFailure

from engagement_assets.conversations.mongo_store import (
    COLLECTION_KEYS,
    MongoStore,
    MongoStoreUnavailable,
    UpsertCounts,
)
from engagement_assets_tests.conversations.fake_mongod import NO_SUCH_COMMAND, FakeMongod

DATABASE = "analytics_test"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server():
    with FakeMongod() as fake:
        yield fake


@pytest.fixture
def db(server):
    """A plain pymongo view of the store's database, to check what was really written."""
    client = MongoClient(server.uri, tz_aware=True)
    yield client[DATABASE]
    client.drop_database(DATABASE)
    client.close()


@pytest.fixture
def store(server, db):
    # Batches of 2, so that five rows also cross batch boundaries.
    with MongoStore.connect(server.uri, DATABASE, batch_size=2) as opened:
        opened.ensure_indexes()
        yield opened


def conversation(conversation_id: str, **fields) -> dict:
    return {"conversation_id": conversation_id, "user_id": "u1", "message_count": 3, **fields}


def test_ensure_indexes_makes_each_natural_key_unique(store, db):
    store.ensure_indexes()  # a second call is a no-op

    for collection, keys in COLLECTION_KEYS.items():
        unique = [
            index["key"] for index in db[collection].index_information().values() if index.get("unique")
        ]
        assert unique == [[(key, 1) for key in keys]], collection
    db.conversation_messages.insert_one({"message_id": "m1"})
    with pytest.raises(DuplicateKeyError) as err:
        db.conversation_messages.insert_one({"message_id": "m1"})
    assert err.value.code == 11000


def test_rerun_with_the_same_rows_changes_nothing(store, db):
    rows = [conversation(f"c{i}") for i in range(5)]

    assert store.upsert("conversation_analytics", rows) == UpsertCounts(inserted=5)
    ids = {doc["conversation_id"]: doc["_id"] for doc in db.conversation_analytics.find()}
    assert store.upsert("conversation_analytics", rows) == UpsertCounts(unchanged=5)

    assert {doc["conversation_id"]: doc["_id"] for doc in db.conversation_analytics.find()} == ids


def test_changed_row_is_updated_in_place(store, db):
    rows = [conversation(f"c{i}") for i in range(5)]
    store.upsert("conversation_analytics", rows)
    before = db.conversation_analytics.find_one({"conversation_id": "c2"})

    rows[2] = conversation("c2", message_count=9)
    counts = store.upsert("conversation_analytics", [*rows, conversation("c5")])

    assert counts == UpsertCounts(inserted=1, updated=1, unchanged=4)
    after = db.conversation_analytics.find_one({"conversation_id": "c2"})
    assert (after["_id"], after["message_count"]) == (before["_id"], 9)
    assert db.conversation_analytics.count_documents({}) == 6


def test_reports_are_keyed_by_period_and_start(store, db):
    start = dt.date(2024, 1, 1)
    reports = [
        {"period": period, "period_start": start, "conversations": 10} for period in ("day", "week", "month")
    ]
    assert store.upsert("analytics_reports", reports) == UpsertCounts(inserted=3)

    reports[1] = {"period": "week", "period_start": start, "conversations": 70}
    assert store.upsert("analytics_reports", reports) == UpsertCounts(updated=1, unchanged=2)

    week = db.analytics_reports.find_one({"period": "week"})
    assert week["conversations"] == 70
    assert week["period_start"] == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert db.analytics_reports.count_documents({}) == 3


@pytest.mark.parametrize("missing", [None, np.nan])
def test_row_without_its_key_is_refused(store, db, missing):
    with pytest.raises(ValueError, match="conversation_id"):
        store.upsert("conversation_categories", [{"conversation_id": missing, "topic": "billing"}])
    assert db.conversation_categories.count_documents({}) == 0


def test_unknown_collection_is_refused(store):
    with pytest.raises(ValueError, match="unknown collection 'conversations'"):
        store.upsert("conversations", [conversation("c1")])


def test_pandas_and_numpy_values_are_stored_as_bson(store, db):
    frame = pd.DataFrame(
        {
            "conversation_id": ["c1", "c2"],
            "sentiment": [0.5, np.nan],
            "started_at": pd.to_datetime(["2024-01-01 10:00", None]),
            "ended_at": pd.to_datetime(["2024-01-01 10:30"] * 2).tz_localize("Europe/Berlin"),
            "score": pd.array([1, pd.NA], dtype="Int64"),
        }
    )
    numpy_row = {
        "conversation_id": np.str_("c3"),
        "message_count": np.int64(7),
        "sentiment": np.float32(0.25),
        "resolved": np.bool_(True),
        "started_at": np.datetime64("2024-01-02T03:04:05"),
        "ended_at": np.datetime64("NaT"),
        "message_ids": np.array([1, 2]),
    }
    rows = [*frame.to_dict("records"), numpy_row]

    assert store.upsert("conversation_analytics", rows) == UpsertCounts(inserted=3)
    # NaN stored as null compares equal on a re-run, so the rows are not rewritten.
    assert store.upsert("conversation_analytics", rows) == UpsertCounts(unchanged=3)

    docs = {doc.pop("conversation_id"): doc for doc in db.conversation_analytics.find({}, {"_id": 0})}
    assert docs["c1"] == {
        "sentiment": 0.5,
        "started_at": dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.UTC),
        "ended_at": dt.datetime(2024, 1, 1, 9, 30, tzinfo=dt.UTC),
        "score": 1,
    }
    assert (docs["c2"]["sentiment"], docs["c2"]["started_at"], docs["c2"]["score"]) == (None, None, None)
    assert docs["c3"] == {
        "message_count": 7,
        "sentiment": 0.25,
        "resolved": True,
        "started_at": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "ended_at": None,
        "message_ids": [1, 2],
    }


def test_unreachable_server_is_named_without_the_password():
    port = _free_port()

    with pytest.raises(MongoStoreUnavailable) as err:
        MongoStore.connect(
            f"mongodb://analyst:s3cret-pw@127.0.0.1:{port}/?authSource=admin", "x", timeout_ms=200
        )

    assert f"127.0.0.1:{port}" in str(err.value)
    assert "s3cret-pw" not in str(err.value)
    assert "s3cret-pw" not in str(err.value.__cause__)


def test_fake_mongod_refuses_unknown_commands(server):
    with MongoClient(server.uri) as client, pytest.raises(OperationFailure) as err:
        client.admin.command("replSetGetStatus")
    assert err.value.code == NO_SUCH_COMMAND


def test_fake_mongod_runs_as_a_module():
    command = [sys.executable, "-m", "engagement_assets_tests.conversations.fake_mongod", "0"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        uri = process.stdout.readline().split()[-1]
        with MongoClient(uri, serverSelectionTimeoutMS=2_000) as client:
            assert client.admin.command("ping")["ok"] == 1
    finally:
        process.terminate()
        process.wait(timeout=10)


def _free_port() -> int:
    """A port nothing listens on: bound, read and released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
