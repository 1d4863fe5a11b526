"""Storage rows as the telemetry middleware stores them, in the export dialects real exports come in (JSON array or JSONL, extended JSON).

One event (or, rarely, a whole batch list) goes into one row; the batch envelope fields surround it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .ids import BatchMids, ObjectIds
from .jsonfmt import compact

MONGO_RELAXED = "mongo_relaxed"  # mongoexport ≥ 4.2 default: plain numbers, {"$date": "…Z"}
MONGO_CANONICAL = "mongo_canonical"  # every number wrapped, {"$date": {"$numberLong": "…"}}
MONGO_LEGACY = "mongo_legacy"  # shell / v1 exporters: {"$date": <epoch ms>}
MYSQL = "mysql"  # all-telemetry-mw main: `id`, `params` and `events` as JSON strings, no createdAt
OBSRV_EVENT = "obsrv_event"  # the event itself, with the extractor's syncts and @timestamp

ROW_STYLES = (MONGO_RELAXED, MONGO_CANONICAL, MONGO_LEGACY, MYSQL)
ROW_STYLE_WEIGHTS = (45, 20, 10, 25)

API_ID = "api.sunbird.telemetry"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT32 = range(-(2**31), 2**31)


@dataclass(frozen=True)
class Delivery:
    """When and how a batch reached the server."""

    batch_ets: int  # client time the batch was built
    syncts: int  # server receive time
    created_at: int  # Mongo insert time (createdAt)


def iso_utc(epoch_ms: int) -> str:
    """`2025-06-12T10:23:45.123Z`, the relaxed `$date` form."""
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def batch_msgid(events: list[dict[str, Any]]) -> str:
    """params.msgid is the MD5 of the batch's events, so a re-sent batch keeps it."""
    return hashlib.md5("".join(event["mid"] for event in events).encode()).hexdigest()


def canonical_number(value: int | float) -> dict[str, str]:
    if type(value) is float:
        return {"$numberDouble": float.__repr__(value)}
    return {"$numberInt" if value in _INT32 else "$numberLong": str(value)}


def canonical(value: Any) -> Any:
    """Canonical extended JSON: every number wrapped, strings and structure unchanged."""
    kind = type(value)
    if kind is int or kind is float:
        return canonical_number(value)
    if kind is dict:
        return {key: canonical(item) for key, item in value.items()}
    if kind is list:
        return [canonical(item) for item in value]
    return value


def _canonical_event(event: dict[str, Any]) -> dict[str, Any]:
    # Contexts hold no numbers, so only ets and edata need wrapping and the shared context is kept.
    wrapped = dict(event)
    wrapped["ets"] = {"$numberLong": str(event["ets"])}
    wrapped["edata"] = canonical(event["edata"])
    return wrapped


class RowFactory:
    """Builds storage rows; owns the id sequences so re-sent rows get fresh `_id`/`id`/batch `mid`."""

    def __init__(self, object_ids: ObjectIds, batch_mids: BatchMids, first_mysql_id: int) -> None:
        self._object_ids = object_ids
        self._batch_mids = batch_mids
        self._next_mysql_id = first_mysql_id

    def row(self, style: str, events: list[dict[str, Any]], delivery: Delivery) -> dict[str, Any]:
        if style == OBSRV_EVENT:
            return self._obsrv(events[0], delivery)
        payload: Any = events[0] if len(events) == 1 else events
        msgid = batch_msgid(events)
        if style == MYSQL:
            return self._mysql(payload, msgid, delivery)
        return self._mongo(style, payload, msgid, delivery)

    def _mongo(self, style: str, payload: Any, msgid: str, delivery: Delivery) -> dict[str, Any]:
        row: dict[str, Any] = {"_id": {"$oid": self._object_ids.at(delivery.created_at)}}
        row["api_id"] = API_ID
        row["ver"] = "3.0"
        row["params"] = {"msgid": msgid}
        if style == MONGO_CANONICAL:
            row["ets"] = {"$numberLong": str(delivery.batch_ets)}
            row["createdAt"] = {"$date": {"$numberLong": str(delivery.created_at)}}
            row["events"] = (
                [_canonical_event(e) for e in payload] if type(payload) is list else _canonical_event(payload)
            )
        else:
            row["ets"] = delivery.batch_ets
            created = iso_utc(delivery.created_at) if style == MONGO_RELAXED else delivery.created_at
            row["createdAt"] = {"$date": created}
            row["events"] = payload
        row["channel"] = _first(payload)["context"]["channel"]
        row["pid"] = _first(payload)["context"]["pdata"]["pid"]
        row["mid"] = self._batch_mids.at(delivery.syncts)
        row["syncts"] = {"$numberLong": str(delivery.syncts)} if style == MONGO_CANONICAL else delivery.syncts
        return row

    def _mysql(self, payload: Any, msgid: str, delivery: Delivery) -> dict[str, Any]:
        row_id = self._next_mysql_id
        self._next_mysql_id += 1
        return {
            "id": row_id,
            "api_id": API_ID,
            "ver": "3.0",
            "params": compact({"msgid": msgid}),
            "ets": delivery.batch_ets,
            "events": compact(payload),
            "channel": _first(payload)["context"]["channel"],
            "pid": _first(payload)["context"]["pdata"]["pid"],
            "mid": self._batch_mids.at(delivery.syncts),
            "syncts": delivery.syncts,
        }

    @staticmethod
    def _obsrv(event: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
        row = dict(event)
        row["syncts"] = delivery.syncts
        row["@timestamp"] = iso_utc(delivery.syncts)
        return row


def _first(payload: Any) -> dict[str, Any]:
    return payload[0] if type(payload) is list else payload
