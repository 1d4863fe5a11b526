"""NocoDB rows as they may come from a hostile or broken base: whatever a field holds, every row is either
a typed row or a rejected one with its reason, and a batch never fails as a whole."""

from __future__ import annotations

import random

import pytest

from engagement_assets.conversations.records import (
    FIELDS,
    QUOTED_CHARS,
    REQUIRED,
    SYSTEM_FIELDS,
    TIMES,
    parse_rows,
)

HOSTILE = [
    None,
    "",
    "   ",
    "abc",
    "9999-12-31 23:59:59+00:00",
    "0001-01-01",
    "2025-02-30 10:00:00",
    "2025-03-01T10:00:00+05:30",
    0,
    -1,
    2**63,
    -(2**70),
    10**30,
    1.5,
    float("nan"),
    float("inf"),
    True,
    [],
    [1, {"a": 2}],
    {},
    {"$numberLong": "5"},
    "\x00\ud800",
    "=cmd|' /C calc'!A0",
    "x" * 100_000,
]
GOOD = {
    "conversations": {"conversation_id": "c1", "started_at": "2025-03-01 10:00:00+00:00"},
    "messages": {"message_id": "m1", "conversation_id": "c1", "sent_at": "2025-03-01 10:00:05+00:00"},
}


def hostile_rows(table: str, rng: random.Random, count: int) -> list[dict]:
    rows = []
    for number in range(count):
        row = {"Id": number + 1, **GOOD[table]}
        for name in rng.sample([*SYSTEM_FIELDS, *FIELDS[table]], rng.randint(1, 3)):
            row[name] = rng.choice(HOSTILE)
        rows.append(row)
    return rows


@pytest.mark.parametrize("table", ["conversations", "messages"])
@pytest.mark.parametrize("seed", range(5))
def test_every_hostile_row_is_kept_typed_or_rejected_with_a_reason(table, seed):
    raw = hostile_rows(table, random.Random(seed), 300)
    parsed = parse_rows(table, raw)
    assert len(parsed.rows) + len(parsed.rejected) == len(raw)
    assert sum(parsed.reasons.values()) == len(parsed.rejected) and parsed.rejected["reason"].notna().all()
    for name in REQUIRED[table]:
        assert parsed.rows[name].notna().all()
    assert parsed.rows["Id"].notna().all() and parsed.rows["Id"].between(0, 2**63 - 1).all()
    assert parsed.rejected["row"].str.len().max() < QUOTED_CHARS + 100  # a huge row is quoted, not copied
    for name in set(FIELDS[table]) - set(TIMES[table]):  # every text is storable UTF-8
        texts = parsed.rows[name].dropna()
        assert all(isinstance(text, str) for text in texts) and "".join(map(str, texts)).encode()


@pytest.mark.parametrize("value", [2**63, -(2**70), "abc", 1.5, [], {"a": 1}, True, float("inf")])
def test_a_row_id_no_cursor_can_follow_is_rejected(value):
    raw = [{"Id": 1, **GOOD["messages"]}, {"Id": value, **GOOD["messages"], "message_id": "m2"}]
    parsed = parse_rows("messages", raw)
    assert parsed.rows["message_id"].tolist() == ["m1"]
    assert parsed.reasons == {"unreadable Id": 1}


def test_a_missing_row_id_is_rejected():
    parsed = parse_rows("messages", [{**GOOD["messages"]}])
    assert parsed.rows.empty and parsed.reasons == {"missing Id": 1}
