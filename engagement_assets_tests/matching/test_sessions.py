"""Reading lesson-tracking exports: time zones, typing, clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from engagement_assets.matching.sessions import SESSION_COLUMNS, SessionsFileError, parse_sessions

HEADER = "_id,userId,sessionId,milestone,milestoneLevel,language,lesson,progress,createdAt,__v\n"


def csv(*rows: str, header: str = HEADER) -> bytes:
    return (header + "\n".join(rows) + "\n").encode()


def test_every_time_form_becomes_naive_utc():
    data = csv(
        "a,1,S,practice,m1,en,1,10,2025-06-12T10:24:31.870Z,0",
        "b,1,S,practice,m1,en,2,20,2025-06-12T15:54:31.870+05:30,0",
        "c,1,S,practice,m1,en,3,30,2025-06-12 10:24:31.870000,0",
    )
    sessions = parse_sessions(data, "u_learnerai_data.csv")
    assert list(sessions.columns) == list(SESSION_COLUMNS)
    assert sessions["CreatedAt_Session"].tolist() == [pd.Timestamp("2025-06-12 10:24:31.870")] * 3
    assert sessions["Lesson"].tolist() == ["1", "2", "3"]
    assert sessions["Progress"].tolist() == [10.0, 20.0, 30.0]


def test_a_missing_required_column_names_the_column_and_the_file():
    data = csv(
        "a,1,S,m1,en,1,10,0", header="_id,userId,sessionId,milestoneLevel,language,lesson,progress,__v\n"
    )
    with pytest.raises(
        SessionsFileError, match=r"u_learnerai_data\.csv: missing required column\(s\) createdAt"
    ):
        parse_sessions(data, "u_learnerai_data.csv")


def test_a_timestamp_that_is_not_one_is_an_error_naming_the_file():
    with pytest.raises(SessionsFileError, match=r"f\.csv: createdAt"):
        parse_sessions(csv("a,1,S,practice,m1,en,1,10,yesterday,0"), "f.csv")


def test_empty_file_and_header_only_mean_no_rows():
    assert parse_sessions(b"", "f.csv").empty
    assert parse_sessions(HEADER.encode(), "f.csv").empty


def test_extra_columns_are_ignored_and_mysql_exports_work():
    data = csv(
        "7,1,S,practice,m1,en,1,10,2025-06-12 10:24:31.870000",
        header="id,userId,sessionId,milestone,milestoneLevel,language,lesson,progress,createdAt\n",
    )
    assert parse_sessions(data, "f.csv")["SessionId"].tolist() == ["S"]
