"""OPT-IN: our NocoDB client and the sync against a REAL NocoDB 0.301.3, installed from npm (real_nocodb.py)
and seeded with generated conversations. It checks on the real server what the fake NocoDB only imitates:
paging through v1 and v2 with either auth header, both incremental cursors (which includes the `exactDate`
where-filter on UpdatedAt), the 401 and 404 answers, and a whole `collect.sync` into a LocalStore.

    NOCODB_E2E=1 python3 -m pytest engagement_assets_tests/conversations/test_real_nocodb.py
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests

from engagement_assets.conversations.collect import RAW, sync
from engagement_assets.conversations.nocodb import (
    NOCODB_TIME_FORMAT,
    NocoDBAuthError,
    NocoDBClient,
    NocoDBNotFoundError,
)
from engagement_assets.conversations.resources import NocoDBResource
from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.devtools.conversation_sample import generate
from engagement_assets.storage.store import open_store
from engagement_assets_tests.conversations.real_nocodb import RealNocoDB, create_tables

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("NOCODB_E2E") != "1",
        reason="set NOCODB_E2E=1 to install NocoDB 0.301.3 from npm (~1.4 GB, ~3 min) and test against it",
    ),
]

PAGE_SIZE = 7  # small, so that every read walks many pages
DEFAULTS = ConversationSettings()
# NocoDB keeps change times to the second: waiting longer than that puts a row's UpdatedAt strictly on one
# side of a moment taken in between.
TICK = 1.1


@dataclass
class Seeded:
    url: str
    token: str
    base_id: str
    tables: dict[str, str]
    conversations: list[dict]  # as generated, in insert order
    messages: list[dict]
    ids: dict[str, list[int]]  # the Ids NocoDB gave them

    def client(self, **options) -> NocoDBClient:
        return NocoDBClient(self.url, self.token, self.base_id, page_size=PAGE_SIZE, **options)


@pytest.fixture(scope="module")
def nocodb() -> Iterator[Seeded]:
    conversations, messages = generate(conversations=50, learners=8, days=3, seed=11)
    with RealNocoDB() as (url, token, base_id, tables):
        seeded = Seeded(url, token, base_id, tables, conversations, messages, {})
        with seeded.client() as client:
            for table, rows in (("conversations", conversations), ("messages", messages)):
                seeded.ids[table] = [row["Id"] for row in client.insert_rows(tables[table], rows)]
        yield seeded


def read_all(client: NocoDBClient, table: str, **cursors) -> tuple[list[dict], int]:
    """Every row the client yields, and how many pages carried them."""
    pages = list(client.iter_pages(table, **cursors))
    return [row for page in pages for row in page], len(pages)


@pytest.mark.parametrize("api_version", ["v1", "v2"])
@pytest.mark.parametrize("auth_header", ["xc-token", "bearer"])
def test_every_seeded_row_comes_back_page_by_page(nocodb, api_version, auth_header):
    with nocodb.client(api_version=api_version, auth_header=auth_header) as client:
        for table, generated in (("conversations", nocodb.conversations), ("messages", nocodb.messages)):
            rows, pages = read_all(client, nocodb.tables[table])
            assert pages == math.ceil(len(generated) / PAGE_SIZE)
            assert [row["Id"] for row in rows] == nocodb.ids[table]
            key = "conversation_id" if table == "conversations" else "message_id"
            assert [row[key] for row in rows] == [row.get(key) for row in generated]

        conversations, _ = read_all(client, nocodb.tables["conversations"])
    # DateTime values come back in the very format the sample (and the fake) write them.
    sent = {row["conversation_id"]: row["started_at"] for row in nocodb.conversations[:-2]}
    assert {row["conversation_id"]: row["started_at"] for row in conversations[:-2]} == sent


def test_only_rows_added_after_the_last_id_come_back(nocodb):
    table = create_tables(nocodb.url, nocodb.token, nocodb.base_id, suffix="_by_id")["conversations"]
    with nocodb.client(api_version="v2") as client:
        first = client.insert_rows(table, nocodb.conversations[:20])
        added = client.insert_rows(table, nocodb.conversations[20:30])
        rows, pages = read_all(client, table, after_id=first[-1]["Id"])
    assert [row["Id"] for row in rows] == [row["Id"] for row in added]
    assert pages == 2


def test_only_rows_updated_after_a_time_come_back(nocodb):
    table = create_tables(nocodb.url, nocodb.token, nocodb.base_id, suffix="_by_time")["conversations"]
    with nocodb.client() as client:
        ids = [row["Id"] for row in client.insert_rows(table, nocodb.conversations[:20])]
        earlier, later = ids[2], ids[4]
        patch_status(nocodb, table, earlier, "y")  # updated today, but before the cursor's time
        time.sleep(TICK)
        before = datetime.now(UTC)
        time.sleep(TICK)
        patch_status(nocodb, table, later, "x")

        rows, _ = read_all(client, table, updated_after=before)
        assert [(row["Id"], row["status"]) for row in rows] == [(later, "x")]

        # Both cursors at once: the `((Id,gt,n)~or(UpdatedAt,ge,exactDate,…))` group.
        added = [row["Id"] for row in client.insert_rows(table, nocodb.conversations[20:23])]
        rows, _ = read_all(client, table, after_id=ids[-1], updated_after=before)
        assert [row["Id"] for row in rows] == [later, *added]

    # What the server itself selects, before the client's own check. Observed on 0.301.3: inserted rows keep
    # UpdatedAt null (as in the fake), PATCH stamps it to the second, and `exactDate` with a time compares
    # instants, not days: the row patched earlier the same day is left out (and `(CreatedAt,ge,exactDate,…)`
    # a second after the insert selected nothing). A bare time without `exactDate` is refused with 422.
    assert server_selection(nocodb, table, before) == [later]


def patch_status(nocodb: Seeded, table: str, row_id: int, status: str) -> None:
    response = requests.patch(
        f"{nocodb.url}/api/v2/tables/{table}/records",
        json=[{"Id": row_id, "status": status}],
        headers={"xc-token": nocodb.token},
        timeout=30,
    )
    response.raise_for_status()
    assert response.json() == [{"Id": row_id}]


def server_selection(nocodb: Seeded, table: str, since: datetime) -> list[int]:
    """The Ids the real server returns for the client's update-time filter."""
    response = requests.get(
        f"{nocodb.url}/api/v2/tables/{table}/records",
        params={"where": f"(UpdatedAt,ge,exactDate,{since.strftime(NOCODB_TIME_FORMAT)})", "limit": 1000},
        headers={"xc-token": nocodb.token},
        timeout=30,
    )
    response.raise_for_status()
    return [row["Id"] for row in response.json()["list"]]


@pytest.mark.parametrize("api_version", ["v1", "v2"])
@pytest.mark.parametrize("auth_header", ["xc-token", "bearer"])
def test_a_bad_token_is_refused_with_401(nocodb, api_version, auth_header):
    client = NocoDBClient(
        nocodb.url, "not-the-token", nocodb.base_id, api_version=api_version, auth_header=auth_header
    )
    with client, pytest.raises(NocoDBAuthError) as refused:
        next(client.iter_pages(nocodb.tables["conversations"]))
    assert refused.value.status == 401
    assert "ERR_AUTHENTICATION_REQUIRED" in str(refused.value)


@pytest.mark.parametrize("api_version", ["v1", "v2"])
def test_an_unknown_table_id_is_a_404(nocodb, api_version):
    with nocodb.client(api_version=api_version) as client, pytest.raises(NocoDBNotFoundError) as missing:
        next(client.iter_pages("mnosuchtable0000"))
    assert (missing.value.status, missing.value.resource) == (404, "table")


def test_an_unknown_base_id_is_a_404_on_v1(nocodb):
    client = NocoDBClient(nocodb.url, nocodb.token, "pnosuchbase00000")
    with client, pytest.raises(NocoDBNotFoundError) as missing:
        next(client.iter_pages(nocodb.tables["conversations"]))
    assert (missing.value.status, missing.value.resource) == (404, "base (project)")


def test_sync_stores_every_generated_conversation_once(nocodb, tmp_path):
    resource = NocoDBResource(
        base_url=nocodb.url,
        token=nocodb.token,
        project_id=nocodb.base_id,
        conversation_table=nocodb.tables["conversations"],
        messages_table=nocodb.tables["messages"],
        page_size=PAGE_SIZE,
        api_version=DEFAULTS.nocodb_api_version,
        auth_header=DEFAULTS.nocodb_auth_header,
        max_retries=DEFAULTS.max_retries,
        retry_delay=DEFAULTS.retry_delay,
        id_field=DEFAULTS.nocodb_id_field,
        updated_field=DEFAULTS.nocodb_updated_field,
    )
    store = open_store(tmp_path)
    with resource.client() as client:
        first = sync(resource.pages(client), store, batch_size=20)
        # Incremental now: the watermark's `((Id,gt,n)~or(UpdatedAt,ge,…))` query on the real server.
        sync(resource.pages(client), store, batch_size=20)

    usable = [
        row for row in nocodb.conversations if row.get("conversation_id") and readable(row["started_at"])
    ]
    conversations = stored(store, "conversations")
    assert sorted(conversations["conversation_id"]) == sorted(row["conversation_id"] for row in usable)
    assert conversations["conversation_id"].is_unique
    messages = stored(store, "messages")
    assert len(messages) == len(nocodb.messages) and messages["message_id"].is_unique
    # The sample's "yesterday" in a DateTime column is stored by the real server and read back as
    # "Invalid Date" (the fake keeps "yesterday"): unreadable either way.
    assert first.rejected == {
        "conversations: missing conversation_id": 1,
        "conversations: unreadable started_at": 1,
    }


def stored(store, table: str) -> pd.DataFrame:
    keys = [f.key for f in store.list_files(f"{RAW}/{table}/")]
    return pd.concat([pq.read_table(io.BytesIO(store.read_bytes(key))).to_pandas() for key in keys])


def readable(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
