"""`<user_id>_learnerai_data.csv`: per-learner exports of the `learnerai_lesson_tracking` collection/table,
named as the platform looks them up (`sessions_key`)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engagement_assets.matching.sessions import sessions_key
from engagement_assets.storage.layout import SESSIONS_PREFIX

from .ids import ObjectIds
from .practice import Learner, LessonRow

# The lesson-tracking fields both exporters write, between their own id and (Mongo only) version columns.
LESSON_FIELDS = (
    "userId",
    "sessionId",
    "milestone",
    "milestoneLevel",
    "language",
    "lesson",
    "progress",
    "createdAt",
)
MONGO_COLUMNS = ("_id", *LESSON_FIELDS, "__v")
MYSQL_COLUMNS = ("id", *LESSON_FIELDS)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_IST = timedelta(hours=5, minutes=30)


def created_at_text(epoch_ms: int, clock: str) -> str:
    """Naive UTC `2025-06-12 10:24:31.870000`, `…T10:24:31.870Z`, or the same instant in IST `+05:30`."""
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    millis = f"{epoch_ms % 1000:03d}"
    if clock == "naive":
        return moment.strftime("%Y-%m-%d %H:%M:%S.") + millis + "000"
    if clock == "ist":
        return (moment + _IST).strftime("%Y-%m-%dT%H:%M:%S.") + millis + "+05:30"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + millis + "Z"


class SessionsFolder:
    """Appends lesson rows to each learner's CSV; a file is started fresh the first time a run touches it.
    A session's rows carry the id the server tracked it under (a buddy's are the buddy's own file)."""

    def __init__(self, root: Path, object_ids: ObjectIds, first_mysql_id: int) -> None:
        self.root = root
        self.rows = 0
        self.rows_by_kind: dict[str, int] = {}
        self.files: dict[str, int] = {}  # file name -> rows, in creation order
        self._object_ids = object_ids
        self._next_mysql_id = first_mysql_id

    @staticmethod
    def file_name(user_id: str) -> str:
        """The file's name within the sessions folder."""
        return sessions_key(user_id).removeprefix(SESSIONS_PREFIX)

    def append(self, learner: Learner, rows: list[LessonRow]) -> None:
        if not learner.has_sessions_file:
            return
        by_user: dict[str, list[LessonRow]] = {}
        for row in rows:
            by_user.setdefault(row.user_id, []).append(row)
        for user_id, user_rows in by_user.items():
            self._write(learner, user_id, user_rows)

    def _write(self, learner: Learner, user_id: str, rows: list[LessonRow]) -> None:
        name = self.file_name(user_id)
        first_write = name not in self.files
        path = self.root / sessions_key(user_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w" if first_write else "a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            if first_write:
                writer.writerow(MYSQL_COLUMNS if learner.csv_dialect == "mysql" else MONGO_COLUMNS)
            writer.writerows(self._line(learner, row) for row in sorted(rows, key=lambda r: r.created_ms))
        self.files[name] = self.files.get(name, 0) + len(rows)
        self.rows += len(rows)
        for row in rows:
            self.rows_by_kind[row.kind] = self.rows_by_kind.get(row.kind, 0) + 1

    def _line(self, learner: Learner, row: LessonRow) -> list[str]:
        fields = [
            row.user_id,
            row.session_id,
            row.milestone,
            f"m{row.level}",
            row.language,
            row.lesson,
            str(row.progress),
        ]
        if learner.csv_dialect == "mysql":
            self._next_mysql_id += 1
            return [str(self._next_mysql_id), *fields, created_at_text(row.created_ms, "naive")]
        object_id = self._object_ids.at(row.created_ms)
        return [object_id, *fields, created_at_text(row.created_ms, learner.csv_clock), "0"]
