"""The NocoDB client against the fake NocoDB, over real HTTP on 127.0.0.1, and the fake's own documented quirks
(README, "Conversation analytics")."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests

from engagement_assets.conversations.nocodb import (
    NocoDBAuthError,
    NocoDBClient,
    NocoDBNotFoundError,
    NocoDBRequestError,
    NocoDBUnavailableError,
)
from engagement_assets.devtools.fake_nocodb import FakeNocoDB

TOKEN = "nc-secret-7f3a9c41d2"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A settable clock for the fake's CreatedAt/UpdatedAt stamps."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def fake(clock):
    with FakeNocoDB(token=TOKEN, clock=clock) as server:
        yield server


def client_for(fake: FakeNocoDB, **options) -> NocoDBClient:
    options = {"backoff_seconds": 0.001, "timeout": 5.0, **options}
    return NocoDBClient(
        fake.url, options.pop("token", TOKEN), options.pop("project_id", fake.base_id), **options
    )


def seeded(fake: FakeNocoDB, count: int) -> str:
    table = fake.create_table("conversations")
    fake.add_rows(table, [{"conversation_id": f"c{i}", "message_count": i} for i in range(1, count + 1)])
    return table


def read_all(client: NocoDBClient, table: str, **cursors) -> list[dict]:
    return [row for page in client.iter_pages(table, **cursors) for row in page]


def raw_get(fake: FakeNocoDB, path: str, headers: dict | None = None, **params) -> requests.Response:
    return requests.get(
        f"{fake.url}{path}",
        params=params,
        headers={"xc-token": TOKEN} if headers is None else headers,
        timeout=5,
    )


# ---------------------------------------------------------------------------------------------------------
# Reading


@pytest.mark.parametrize("api_version", ["v1", "v2"])
@pytest.mark.parametrize("auth_header", ["xc-token", "bearer"])
def test_reads_every_row_with_either_api_version_and_auth_header(fake, api_version, auth_header):
    table = seeded(fake, 7)
    with client_for(fake, api_version=api_version, auth_header=auth_header, page_size=3) as client:
        pages = list(client.iter_pages(table))

    assert [len(page) for page in pages] == [3, 3, 1]
    rows = [row for page in pages for row in page]
    assert [row["Id"] for row in rows] == list(range(1, 8))
    assert rows[0] == {
        "Id": 1,
        "CreatedAt": "2026-03-01 09:00:00+00:00",
        "UpdatedAt": None,
        "conversation_id": "c1",
        "message_count": 1,
    }
    expected_path = (
        f"/api/v1/db/data/v1/{fake.base_id}/{table}"
        if api_version == "v1"
        else f"/api/v2/tables/{table}/records"
    )
    assert {(r.path, r.auth) for r in fake.requests} == {(expected_path, auth_header)}


def test_pages_are_keyset_paginated_at_offset_zero(fake):
    table = seeded(fake, 7)
    with client_for(fake, page_size=3) as client:
        read_all(client, table)

    queries = [r.query for r in fake.requests]
    assert [q.get("where") for q in queries] == [None, "(Id,gt,3)", "(Id,gt,6)"]
    assert all(q["offset"] == "0" and q["sort"] == "Id" and q["limit"] == "3" for q in queries)


def test_many_pages_at_the_page_size_cap(fake):
    table = seeded(fake, 2345)
    with client_for(fake, page_size=1000) as client:
        pages = list(client.iter_pages(table))

    assert [len(page) for page in pages] == [1000, 1000, 345]
    assert [row["Id"] for page in pages for row in page] == list(range(1, 2346))
    assert len(fake.requests) == 3


def test_a_server_capping_pages_below_the_page_size_is_read_to_the_end(clock):
    # A NocoDB with DB_QUERY_LIMIT_MAX=20 serves 20 rows to a client asking for 50: that short page is not the end.
    with FakeNocoDB(token=TOKEN, max_limit=20, clock=clock) as fake:
        table = seeded(fake, 45)
        with client_for(fake, page_size=50) as client:
            pages = list(client.iter_pages(table))

    assert [len(page) for page in pages] == [20, 20, 5]


def test_an_empty_table_gives_no_pages(fake):
    table = fake.create_table("empty")
    with client_for(fake) as client:
        assert list(client.iter_pages(table)) == []


@pytest.mark.parametrize("page_size", [0, 1001])
def test_page_size_outside_what_nocodb_serves_is_refused(fake, page_size):
    with pytest.raises(ValueError, match="page_size"):
        client_for(fake, page_size=page_size)


# ---------------------------------------------------------------------------------------------------------
# Incremental reads


def test_incremental_by_id_returns_only_newer_rows(fake):
    table = seeded(fake, 10)
    with client_for(fake, page_size=4) as client:
        rows = read_all(client, table, after_id=6)

    assert [row["Id"] for row in rows] == [7, 8, 9, 10]
    assert fake.requests[0].query["where"] == "(Id,gt,6)"


@pytest.mark.parametrize("dates_by_day", [False, True], ids=["time-aware-server", "day-granular-server"])
def test_incremental_by_update_time_returns_new_and_updated_rows_only(clock, dates_by_day):
    with FakeNocoDB(token=TOKEN, clock=clock, dates_by_day=dates_by_day) as fake:
        table = seeded(fake, 10)
        clock.now = T0 + timedelta(minutes=5)
        fake.update_row(table, 2, status="closed")  # before the last run: already processed
        last_run = T0 + timedelta(hours=1)
        with client_for(fake, page_size=3) as client:
            first = read_all(client, table)
            clock.now = last_run + timedelta(hours=2)  # same UTC day as the last run
            fake.update_row(table, 4, status="escalated")
            fake.add_rows(table, [{"conversation_id": "c11"}])
            fake.requests.clear()
            second = read_all(client, table, after_id=max(r["Id"] for r in first), updated_after=last_run)

    assert [row["Id"] for row in second] == [4, 11]
    assert second[0]["status"] == "escalated"
    assert (
        fake.requests[0].query["where"] == "((Id,gt,10)~or(UpdatedAt,ge,exactDate,2026-03-01 10:00:00+00:00))"
    )


def test_incremental_by_update_time_alone_and_with_a_naive_time(fake, clock):
    table = seeded(fake, 5)
    clock.now = T0 + timedelta(days=1)
    fake.update_row(table, 3, status="closed")
    with client_for(fake, page_size=2) as client:
        rows = read_all(client, table, updated_after=datetime(2026, 3, 1, 12, 0))  # naive: taken as UTC

    assert [row["Id"] for row in rows] == [3]
    assert fake.requests[0].query["where"] == "(UpdatedAt,ge,exactDate,2026-03-01 12:00:00+00:00)"


def test_both_cursors_page_through_old_updated_rows_and_new_ones(fake, clock):
    table = seeded(fake, 9)
    clock.now = T0 + timedelta(days=1)
    for row_id in (1, 5, 8):
        fake.update_row(table, row_id, status="closed")
    with client_for(fake, page_size=2) as client:
        rows = read_all(client, table, after_id=7, updated_after=T0 + timedelta(hours=1))

    assert [row["Id"] for row in rows] == [1, 5, 8, 9]
    assert fake.requests[1].query["where"].startswith("(Id,gt,5)~and((Id,gt,7)~or(UpdatedAt,ge,exactDate,")


# ---------------------------------------------------------------------------------------------------------
# Errors never carry the token


def assert_token_hidden(err: BaseException, client: NocoDBClient) -> None:
    assert TOKEN not in str(err)
    assert TOKEN not in repr(err)
    assert TOKEN not in repr(client)


@pytest.mark.parametrize("auth_header", ["xc-token", "bearer"])
def test_a_refused_token_raises_a_clear_error_without_the_token(fake, auth_header):
    table = seeded(fake, 1)
    client = client_for(fake, token=TOKEN + "-wrong", auth_header=auth_header)
    with client, pytest.raises(NocoDBAuthError, match="token was refused") as caught:
        read_all(client, table)

    assert caught.value.status == 401
    assert "ERR_AUTHENTICATION_REQUIRED" in str(caught.value)
    assert_token_hidden(caught.value, client)
    assert TOKEN + "-wrong" not in str(caught.value)


@pytest.mark.parametrize("auth_header", ["xc-token", "bearer"])
def test_a_redirect_is_not_followed_so_the_token_never_reaches_another_host(fake, clock, auth_header):
    table = seeded(fake, 1)
    with FakeNocoDB(token=TOKEN, clock=clock) as elsewhere:
        fake.redirect_next(f"{elsewhere.url}/api/v1/db/data/v1/{fake.base_id}/{table}?token=x")
        client = client_for(fake, auth_header=auth_header)
        with client, pytest.raises(NocoDBRequestError, match="redirect") as caught:
            read_all(client, table)
        assert elsewhere.requests == []
    assert caught.value.status == 307
    assert elsewhere.url.rsplit(":", 1)[0] in str(caught.value) and "token=x" not in str(caught.value)
    assert_token_hidden(caught.value, client)


def test_an_unknown_project_names_the_base(fake):
    table = seeded(fake, 1)
    client = client_for(fake, project_id="conversations_demo")
    with client, pytest.raises(NocoDBNotFoundError) as caught:
        read_all(client, table)

    assert caught.value.resource == "base (project)"
    assert "Base 'conversations_demo' not found" in str(caught.value)
    assert_token_hidden(caught.value, client)


@pytest.mark.parametrize("api_version", ["v1", "v2"])
def test_an_unknown_table_names_the_table(fake, api_version):
    seeded(fake, 1)
    client = client_for(fake, api_version=api_version)
    with client, pytest.raises(NocoDBNotFoundError, match="Table 'conversations' not found") as caught:
        read_all(client, "conversations")  # a title, not the m… id

    assert caught.value.resource == "table"
    assert "by id" in str(caught.value)


def test_an_unknown_field_is_a_422_with_nocodbs_message(fake):
    table = seeded(fake, 3)
    client = client_for(fake)
    with client, pytest.raises(NocoDBRequestError, match=re.escape("Column alias 'id' not found.")) as caught:
        read_all(client, table, id_field="id", after_id=1)

    assert caught.value.status == 422
    assert_token_hidden(caught.value, client)


# ---------------------------------------------------------------------------------------------------------
# Retries


def test_429_500_and_503_are_retried_then_succeed(fake, caplog):
    table = seeded(fake, 3)
    fake.fail_next(429, 500, 503)
    with caplog.at_level(logging.WARNING), client_for(fake, max_retries=3) as client:
        rows = read_all(client, table)

    assert [row["Id"] for row in rows] == [1, 2, 3]
    assert len(fake.requests) == 4
    assert [record.getMessage().split(" failed ")[1][:10] for record in caplog.records] == [
        "(HTTP 429)",
        "(HTTP 500)",
        "(HTTP 503)",
    ]
    assert TOKEN not in caplog.text


def test_a_persistent_503_fails_after_max_retries(fake):
    table = seeded(fake, 3)
    fake.fail_next(*[503] * 10)
    client = client_for(fake, max_retries=2)
    with (
        client,
        pytest.raises(NocoDBUnavailableError, match="after 3 attempts; the last one got HTTP 503") as caught,
    ):
        read_all(client, table)

    assert caught.value.attempts == 3
    assert caught.value.status == 503
    assert len(fake.requests) == 3
    assert_token_hidden(caught.value, client)


def test_no_server_at_all_fails_after_max_retries(clock):
    with FakeNocoDB(token=TOKEN, clock=clock) as fake:
        url = fake.url
    client = NocoDBClient(url, TOKEN, "p1", max_retries=1, backoff_seconds=0.001, timeout=2.0)
    with (
        client,
        pytest.raises(
            NocoDBUnavailableError, match=r"after 2 attempts; the last one got no answer"
        ) as caught,
    ):
        read_all(client, "m1")

    assert caught.value.status is None
    assert_token_hidden(caught.value, client)


# ---------------------------------------------------------------------------------------------------------
# Seeding


def test_insert_rows_posts_chunks_of_at_most_100(fake):
    table = fake.create_table("messages")
    with client_for(fake, api_version="v1", page_size=1000) as client:
        created = client.insert_rows(table, [{"message_id": f"m{i}"} for i in range(250)])
        rows = read_all(client, table)

    assert created == [{"Id": i} for i in range(1, 251)]
    posts = [r for r in fake.requests if r.method == "POST"]
    assert [r.path for r in posts] == [f"/api/v2/tables/{table}/records"] * 3
    assert [row["message_id"] for row in rows] == [f"m{i}" for i in range(250)]


# ---------------------------------------------------------------------------------------------------------
# The fake's documented behaviour


def test_fake_limit_defaults_to_25_and_is_capped_at_1000(fake):
    table = seeded(fake, 1200)
    path = f"/api/v2/tables/{table}/records"

    default = raw_get(fake, path).json()
    capped = raw_get(fake, path, limit=5000).json()

    assert len(default["list"]) == 25
    assert default["pageInfo"] == {
        "totalRows": 1200,
        "page": 1,
        "pageSize": 25,
        "isFirstPage": True,
        "isLastPage": False,
    }
    assert len(capped["list"]) == 1000
    assert capped["pageInfo"]["pageSize"] == 1000


def test_fake_offset_past_the_end_is_422_except_zero_on_empty(fake):
    table = seeded(fake, 3)
    empty = fake.create_table("empty")

    past_end = raw_get(fake, f"/api/v2/tables/{table}/records", offset=3)
    on_empty = raw_get(fake, f"/api/v2/tables/{empty}/records", offset=0)

    assert past_end.status_code == 422
    assert past_end.json() == {"error": "ERR_INVALID_OFFSET_VALUE"}
    assert on_empty.status_code == 200
    assert on_empty.json() == {
        "list": [],
        "pageInfo": {"totalRows": 0, "page": 1, "pageSize": 25, "isFirstPage": True, "isLastPage": True},
    }


def test_fake_page_info_quirk_when_offset_is_not_a_multiple_of_limit(fake):
    table = seeded(fake, 3)
    body = raw_get(fake, f"/api/v1/db/data/noco/{fake.base_id}/{table}", limit=2, offset=1).json()

    assert [row["Id"] for row in body["list"]] == [2, 3]
    assert body["pageInfo"] == {
        "totalRows": 3,
        "pageSize": 2,
        "isFirstPage": False,
        "isLastPage": False,
        "offset": 1,
    }


def test_fake_where_sort_fields_and_short_aliases(fake):
    table = seeded(fake, 10)
    where = "(message_count,ge,3)~and((message_count,lt,5)~or(message_count,eq,9))~not(Id,eq,4)"

    full = raw_get(
        fake, f"/api/v2/tables/{table}/records", where=where, sort="-Id", fields="Id,message_count"
    )
    short = raw_get(fake, f"/api/v2/tables/{table}/records", w=where, s="-Id", f="Id,message_count")
    count = raw_get(fake, f"/api/v2/tables/{table}/records/count", where=where)

    assert full.json()["list"] == [{"Id": 9, "message_count": 9}, {"Id": 3, "message_count": 3}]
    assert short.json() == full.json()
    assert count.json() == {"count": 2}


def test_fake_and_binds_tighter_than_or_as_in_sql(fake):
    table = seeded(fake, 6)
    body = raw_get(fake, f"/api/v2/tables/{table}/records", where="(Id,eq,1)~or(Id,ge,3)~and(Id,le,4)").json()

    assert [row["Id"] for row in body["list"]] == [1, 3, 4]


def test_fake_datetime_filters_need_exact_date_and_compare_times(fake, clock):
    table = seeded(fake, 3)
    clock.now = T0 + timedelta(hours=3)
    fake.update_row(table, 2, status="closed")
    path = f"/api/v2/tables/{table}/records"

    bare = raw_get(fake, path, where="(UpdatedAt,gt,2026-03-01 10:00:00)")
    after_10 = raw_get(fake, path, where="(UpdatedAt,gt,exactDate,2026-03-01 10:00:00+00:00)")
    after_13 = raw_get(fake, path, where="(UpdatedAt,gt,exactDate,2026-03-01T13:00:00Z)")
    day = raw_get(fake, path, where="(UpdatedAt,eq,exactDate,2026-03-01)~or(UpdatedAt,is,null)")

    assert bare.status_code == 422
    assert [row["Id"] for row in after_10.json()["list"]] == [2]
    assert after_13.json()["list"] == []
    assert [row["Id"] for row in day.json()["list"]] == [1, 2, 3]


def test_fake_unknown_field_in_where_or_sort_is_422(fake):
    table = seeded(fake, 1)
    for params in ({"where": "(nope,eq,1)"}, {"sort": "-nope"}):
        answer = raw_get(fake, f"/api/v2/tables/{table}/records", **params)
        assert answer.status_code == 422
        assert answer.json() == {"msg": "Column alias 'nope' not found."}


def test_fake_auth_xc_token_wins_and_orgs_segment_is_ignored(fake):
    table = seeded(fake, 1)
    good_bearer_bad_xc = {"xc-token": "wrong", "Authorization": f"Bearer {TOKEN}"}
    bad_bearer_good_xc = {"xc-token": TOKEN, "Authorization": "Bearer wrong"}

    refused = raw_get(fake, f"/api/v2/tables/{table}/records", headers=good_bearer_bad_xc)
    missing = raw_get(fake, f"/api/v2/tables/{table}/records", headers={})

    assert refused.status_code == missing.status_code == 401
    assert refused.json() == {
        "error": "ERR_AUTHENTICATION_REQUIRED",
        "message": "Authentication required - Invalid token",
    }
    for orgs in ("v1", "noco", "anything"):
        answer = raw_get(fake, f"/api/v1/db/data/{orgs}/{fake.base_id}/{table}", headers=bad_bearer_good_xc)
        assert answer.status_code == 200


def test_fake_v2_post_limits_and_stamps_rows(fake, clock):
    table = fake.create_table("messages")
    url = f"{fake.url}/api/v2/tables/{table}/records"
    headers = {"xc-token": TOKEN}

    too_many = requests.post(url, json=[{"n": i} for i in range(101)], headers=headers, timeout=5)
    one = requests.post(url, json={"n": 1}, headers=headers, timeout=5)
    row = raw_get(fake, f"/api/v2/tables/{table}/records").json()["list"][0]

    assert too_many.status_code == 422
    assert too_many.json()["error"] == "ERR_MAX_PAYLOAD_LIMIT_EXCEEDED"
    assert one.json() == {"Id": 1}
    assert row == {"Id": 1, "CreatedAt": "2026-03-01 09:00:00+00:00", "UpdatedAt": None, "n": 1}


def test_fake_injected_429_says_retry_after_zero(fake):
    table = seeded(fake, 1)
    fake.fail_next(429)

    throttled = raw_get(fake, f"/api/v2/tables/{table}/records")

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "0"
    assert raw_get(fake, f"/api/v2/tables/{table}/records").status_code == 200
