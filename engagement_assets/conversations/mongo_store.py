"""The optional MongoDB operational store of the conversation analytics group.

Every collection has a natural key with a unique index, and every write is an upsert by that key, so a
re-run after a partial failure rewrites the same documents instead of adding duplicates. Rows come from
pandas, so their values are converted to BSON types first: pymongo cannot encode numpy scalars, and NaN or
NaT must be stored as null, not as a float that no query for "missing" finds.

Writes go through `bulk_write` in ordered batches: one round trip per batch instead of one per row. In-process
`mongomock` 4.3 cannot run `bulk_write` with pymongo >= 4.11 (a TypeError); tests use the wire-protocol
stand-in `engagement_assets_tests.conversations.fake_mongod` instead, which answers over a socket.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pymongo import ASCENDING, MongoClient, UpdateOne
from pymongo.errors import ConnectionFailure, OperationFailure

# The natural key of each collection: what a row is upserted by, and what its unique index covers.
COLLECTION_KEYS: dict[str, tuple[str, ...]] = {
    "conversation_analytics": ("conversation_id",),
    "conversation_messages": ("message_id",),
    "conversation_categories": ("conversation_id",),
    "conversation_translations": ("message_id",),
    "analytics_reports": ("period", "period_start"),
    "model_reports": ("period", "period_start", "model"),
    "user_analytics": ("user_id",),
}
DEFAULT_TIMEOUT_MS = 5_000
DEFAULT_BATCH_SIZE = 1_000


class MongoStoreUnavailable(ConnectionError):
    """The server could not be used; the message names the hosts, never the credentials in the URI."""


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.inserted + other.inserted, self.updated + other.updated, self.unchanged + other.unchanged
        )


class MongoStore:
    """Upserts analytics rows by their natural key."""

    def __init__(
        self,
        client: MongoClient,
        database: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        names: Mapping[str, str] | None = None,
    ):
        self._client = client
        self._db = client[database]
        self._batch_size = batch_size
        # The collections' configured names (MONGODB_*_COLLECTION), by the design's names the group uses.
        self._names = {
            collection: (names or {}).get(collection, collection) for collection in COLLECTION_KEYS
        }

    @classmethod
    def connect(
        cls,
        uri: str,
        database: str,
        *,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        names: Mapping[str, str] | None = None,
    ) -> MongoStore:
        """Connect and ping, so a wrong URI fails here with a clear message, not at the first write.

        `timeout_ms` bounds server selection: pymongo's default of 30 s would stall a run on a dead host.
        """
        client = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, tz_aware=True)
        try:
            client.admin.command("ping")
        except ConnectionFailure as err:
            client.close()
            raise MongoStoreUnavailable(
                f"MongoDB at {hosts_of(uri)} did not answer within {timeout_ms} ms: is it running and reachable?"
            ) from err
        except OperationFailure as err:
            client.close()
            raise MongoStoreUnavailable(
                f"MongoDB at {hosts_of(uri)} refused the connection (code {err.code}): check the credentials"
            ) from err
        return cls(client, database, batch_size, names)

    def __enter__(self) -> MongoStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def ensure_indexes(self) -> None:
        """Create the unique key indexes; a no-op when they already exist, so it runs on every connect."""
        for collection, keys in COLLECTION_KEYS.items():
            self._db[self._names[collection]].create_index([(key, ASCENDING) for key in keys], unique=True)

    def upsert(self, collection: str, rows: Sequence[Mapping[str, Any]]) -> UpsertCounts:
        """Insert new rows and update changed ones in place; identical rows are counted as unchanged."""
        keys = key_fields(collection)
        counts = UpsertCounts()
        for batch in _batches(rows, self._batch_size):
            # Ordered, so that when one batch holds the same key twice the last row wins, as in a loop.
            result = self._db[self._names[collection]].bulk_write(
                [_upsert_op(keys, row) for row in batch], ordered=True
            )
            counts += UpsertCounts(
                inserted=result.upserted_count,
                updated=result.modified_count,
                unchanged=result.matched_count - result.modified_count,
            )
        return counts


def key_fields(collection: str) -> tuple[str, ...]:
    if collection not in COLLECTION_KEYS:
        raise ValueError(f"unknown collection {collection!r}; expected one of {sorted(COLLECTION_KEYS)}")
    return COLLECTION_KEYS[collection]


def hosts_of(uri: str) -> str:
    """The host list of a MongoDB URI without the user and password, and without resolving SRV records."""
    netloc = uri.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    return netloc.rsplit("@", 1)[-1]


def _upsert_op(keys: tuple[str, ...], row: Mapping[str, Any]) -> UpdateOne:
    document = to_bson(row)
    missing = [key for key in keys if document.get(key) is None]
    if missing:
        # A null key would match every other keyless row and merge them into one document.
        raise ValueError(f"row has no value for key field(s) {missing}: {dict(row)!r}")
    return UpdateOne({key: document[key] for key in keys}, {"$set": document}, upsert=True)


def _batches(rows: Sequence[Mapping[str, Any]], size: int) -> Iterator[Sequence[Mapping[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def to_bson(value: Any) -> Any:
    """A value pymongo can encode: containers recursively, numpy/pandas scalars as Python ones, every
    missing marker (None, NaN, NaT, pd.NA) as None and datetimes as UTC-aware (naive ones are taken as UTC,
    which is how pandas and BSON both treat them)."""
    if isinstance(value, Mapping):
        return {key: to_bson(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_bson(item) for item in value]
    if _is_missing(value):
        return None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        # Nanoseconds are dropped without a warning: BSON keeps only milliseconds anyway.
        value = value.to_pydatetime(warn=False)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        # BSON has no date type.
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return value


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return isinstance(value, np.datetime64) and np.isnat(value)
