"""The read API over real HTTP (uvicorn on 127.0.0.1), on data the pipeline built: the conversation
group run against the fake NocoDB, and generated engagement tables. Authentication, paging, filters,
clear 400s for bad or hostile parameters, and no SQL from request text."""

from __future__ import annotations

import socket
import threading
import time

import dagster as dg
import pandas as pd
import pytest
import requests
import uvicorn

from engagement_assets.api.app import create_app
from engagement_assets.api.reader import Reader
from engagement_assets.devtools.conversation_demo import run_conversation_demo
from engagement_assets.devtools.sample_data.phase_history import phase_history
from engagement_assets.prediction.model import train
from engagement_assets.prediction.risk import learner_risk
from engagement_assets.prediction.training_set import training_set
from engagement_assets.settings import Settings
from engagement_assets.storage.store import open_store

TOKEN = "api-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> tuple:
    root = tmp_path_factory.mktemp("api") / "w"
    with dg.instance_for_test() as instance:
        days = run_conversation_demo(instance, Settings(storage_url=str(root)), seed=3)
    history = training_set(phase_history(400, seed=4))
    trained = train(history.rows, 200)
    (root / "phase_level_engagement.parquet").parent.mkdir(parents=True, exist_ok=True)
    phase_history(400, seed=4).to_parquet(root / "phase_level_engagement.parquet")
    learner_risk(history.rows, history.latest_event, trained.model, 0.5, 0.25).to_parquet(
        root / "learner_risk.parquet"
    )
    return root, days


@pytest.fixture(scope="module")
def api(warehouse):
    root, days = warehouse
    store = open_store(root)
    app = create_app(Reader(store, store), TOKEN, max_page_size=50)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", days, root
    server.should_exit = True
    thread.join(10)


def get(api, path, token=TOKEN, **params):
    url, *_ = api
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(url + path, params=params, headers=headers, timeout=30)


def test_without_the_token_everything_but_health_is_refused(api):
    assert get(api, "/health", token=None).status_code == 200
    for path in ("/users", "/reports", "/engagement/risk", f"/conversations/{api[1][0]}"):
        assert get(api, path, token=None).status_code == 401
        assert get(api, path, token="wrong").status_code == 401
        assert get(api, path, token=TOKEN[:-1]).status_code == 401


def test_a_day_of_conversations_pages_and_filters(api, warehouse):
    day = api[1][0]
    first = get(api, f"/conversations/{day}", page_size=2).json()
    stored = pd.read_parquet(
        warehouse[0] / "conversations" / f"year={day[:4]}" / f"month={day[5:7]}" / f"day={day[8:]}"
    )
    assert first["total"] == len(stored) and len(first["rows"]) == min(2, len(stored))
    everything = get(api, f"/conversations/{day}", page_size=50).json()["rows"]
    assert sorted(row["conversation_id"] for row in everything) == sorted(stored["conversation_id"])
    learner = everything[0]["user_id"]
    mine = get(api, f"/conversations/{day}", user_id=learner, page_size=50).json()
    assert mine["rows"] and all(row["user_id"] == learner for row in mine["rows"])
    topic = everything[0]["topic"]
    on_topic = get(api, f"/conversations/{day}", topic=topic, page_size=50).json()["rows"]
    assert on_topic and all(row["topic"] == topic for row in on_topic)


def test_messages_categories_users_and_reports(api):
    day = api[1][0]
    messages = get(api, f"/messages/{day}", page_size=50).json()
    assert messages["total"] > 0
    topic = next(row["topic"] for row in messages["rows"] if row["topic"])
    on_topic = get(api, f"/messages/{day}", topic=topic, page_size=50).json()["rows"]
    assert on_topic and {row["topic"] for row in on_topic} == {topic}
    assert get(api, f"/categories/{day}").json()["total"] > 0
    assert get(api, "/users").json()["total"] > 0
    weekly = get(api, "/reports", period="weekly").json()["rows"]
    assert weekly and {row["period"] for row in weekly} == {"weekly"}


def test_engagement_phases_and_risk(api):
    risk = get(api, "/engagement/risk", page_size=50).json()
    probabilities = [row["probability"] for row in risk["rows"]]
    assert risk["total"] > 0 and probabilities == sorted(probabilities, reverse=True)
    learner = get(api, "/engagement/phases", page_size=1).json()["rows"][0]["UserId"]
    theirs = get(api, "/engagement/phases", user_id=learner, page_size=50).json()["rows"]
    assert theirs and {row["UserId"] for row in theirs} == {learner}


@pytest.mark.parametrize(
    ("path", "params", "problem"),
    [
        ("/users", {"page_size": 51}, "page_size"),
        ("/users", {"page_size": 0}, "page_size"),
        ("/users", {"page": -1}, "page"),
        ("/users", {"page": "x"}, "page"),
        ("/reports", {"period": "hourly"}, "period"),
        ("/engagement/risk", {"band": "red"}, "band"),
        ("/conversations/2025-02-30", {}, "day"),
        ("/conversations/not-a-day", {}, "day"),
        ("/users", {"user_id": "x' OR '1'='1"}, "user_id"),
        ("/users", {"user_id": "a" * 200}, "user_id"),
        ("/engagement/phases", {"phase": "P1; DROP TABLE x"}, "phase"),
    ],
)
def test_a_bad_or_hostile_parameter_is_a_clear_400(api, path, params, problem):
    answer = get(api, path, **params)
    assert answer.status_code == 400, answer.text
    assert problem in {item["parameter"] for item in answer.json()["problems"]}


def test_an_identifier_that_looks_like_sql_finds_nothing_rather_than_everything(api):
    # Allowed characters only, but meaningful to SQL (a comment, a LIKE wildcard): it is a value, compared
    # for equality, never part of the query.
    for value in ("1--", "%", "9000000000--"):
        answer = get(api, "/engagement/phases", user_id=value)
        assert answer.status_code == 200 and answer.json()["total"] == 0


def test_a_day_never_built_is_a_404(api):
    assert get(api, "/conversations/1999-01-01").status_code == 404


def test_the_openapi_document_lists_every_endpoint(api):
    paths = requests.get(api[0] + "/openapi.json", timeout=30).json()["paths"]
    assert {"/conversations/{day}", "/messages/{day}", "/users", "/reports", "/engagement/risk"} <= set(paths)


def test_the_api_does_not_start_without_a_token(monkeypatch, tmp_path):
    from engagement_assets.api.app import app_from_environment

    monkeypatch.delenv("ENGAGEMENT_API_TOKEN", raising=False)
    monkeypatch.setenv("ENGAGEMENT_STORAGE_URL", str(tmp_path))
    with pytest.raises(SystemExit, match="ENGAGEMENT_API_TOKEN"):
        app_from_environment()
