"""What the read API serves, read through DuckDB straight from the Parquet layout (local or S3). Every
query is fixed text with named `$` parameters (a filter left out is NULL and matches everything): nothing
from a request is ever part of the SQL."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow.dataset as ds

from engagement_assets.storage import layout
from engagement_assets.storage.store import Store

MEMORY_LIMIT = "256MB"
QUERIES = {
    "conversations": """
        SELECT c.*, k.topic, k.intent, k.sentiment FROM conversations c
        LEFT JOIN categories k USING (conversation_id)
        WHERE ($user_id IS NULL OR c.user_id = $user_id) AND ($topic IS NULL OR k.topic = $topic)
        ORDER BY c.started_at, c.conversation_id""",
    "messages": """
        SELECT m.*, k.topic FROM messages m
        LEFT JOIN categories k USING (conversation_id)
        WHERE ($user_id IS NULL OR m.user_id = $user_id)
          AND ($conversation_id IS NULL OR m.conversation_id = $conversation_id)
          AND ($topic IS NULL OR k.topic = $topic)
        ORDER BY m.conversation_id, m.position""",
    "categories": """
        SELECT * FROM categories WHERE ($topic IS NULL OR topic = $topic) ORDER BY conversation_id""",
    "user_analytics": """
        SELECT * FROM user_analytics WHERE ($user_id IS NULL OR user_id = $user_id) ORDER BY user_id""",
    "analytics_reports": """
        SELECT * FROM analytics_reports WHERE ($period IS NULL OR period = $period) ORDER BY period, period_start""",
    "phase_level_engagement": """
        SELECT * FROM phase_level_engagement
        WHERE ($user_id IS NULL OR UserId = $user_id) AND ($phase IS NULL OR Phase = $phase)
        ORDER BY UserId, start_time""",
    "learner_risk": """
        SELECT * FROM learner_risk WHERE ($band IS NULL OR band = $band)
        ORDER BY probability DESC NULLS LAST, UserId""",
}
# Which tables each query reads, and whether they are daily (conversation group) or whole tables.
SOURCES = {
    "conversations": ("conversations", "categories"),
    "messages": ("messages", "categories"),
    "categories": ("categories",),
    "user_analytics": ("user_analytics",),
    "analytics_reports": ("analytics_reports",),
    "phase_level_engagement": ("phase_level_engagement",),
    "learner_risk": ("learner_risk",),
}
DAILY = {"conversations", "messages", "categories"}
ENGAGEMENT = {"phase_level_engagement", "learner_risk"}


@dataclass(frozen=True)
class Page:
    rows: list[dict]
    page: int
    page_size: int
    total: int


def _json_safe(value):
    """NaN and infinities have no JSON form: they are served as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


class NotStored(LookupError):
    """The table (or that day of it) has not been materialized."""


class Reader:
    def __init__(self, engagement: Store, conversations: Store):
        self.engagement, self.conversations = engagement, conversations

    def page(self, query: str, params: dict, page: int, page_size: int, day: date | None = None) -> Page:
        """One page of a named query's rows, and how many rows it has in all."""
        con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT})
        try:
            for table in SOURCES[query]:
                con.register(table, self._dataset(table, day))
            sql = QUERIES[query]
            (total,) = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchall()[0]
            cursor = con.execute(
                f"{sql} LIMIT $limit OFFSET $offset",
                {**params, "limit": page_size, "offset": (page - 1) * page_size},
            )
            columns = [described[0] for described in cursor.description]
            rows = [dict(zip(columns, map(_json_safe, row), strict=True)) for row in cursor.fetchall()]
        finally:
            con.close()
        return Page(rows, page, page_size, int(total))

    def _dataset(self, table: str, day: date | None):
        store = self.engagement if table in ENGAGEMENT else self.conversations
        if table in DAILY:
            folder = layout.day_folder(table, day.isoformat())
            keys = [stored.key for stored in store.list_files(folder) if stored.key.endswith(layout.PARQUET)]
        else:
            keys = [layout.table_file(table)] if store.exists(layout.table_file(table)) else []
        if not keys:
            raise NotStored(f"{table}{f' of {day}' if day else ''} has not been materialized")
        filesystem, root = store.arrow()
        return ds.dataset([f"{root}/{key}" for key in keys], filesystem=filesystem, format="parquet")
