"""A MongoDB stand-in that speaks the wire protocol, for tests and the local demo.

No mongod can be installed on this machine (not in Debian, PyPI or npm, and the downloaders need the
internet). So `mockupdb` parses what pymongo sends (OP_MSG, and OP_QUERY for the first handshake) and each
command is answered from an in-memory `mongomock` client. pymongo connects over a real socket, so the code
under test runs unchanged, `bulk_write` included (mongomock only ever sees its own `update_one`).

Limits: memory only; no auth, TLS, transactions or replica sets; a result set comes back in one batch (no
getMore), so it must fit one 48 MB reply; only the commands in `_COMMANDS` and only what mongomock
implements; find options beyond filter/projection/sort/skip/limit are ignored. Requests are served one at
a time (mockupdb holds a lock while a handler runs), which also keeps mongomock single-threaded. mongomock
has no real indexes: every query and every unique-index check scans the collection, so a write costs time
in proportion to the collection's size. Hundreds of documents are instant; 2,000 upserts into a collection
growing to 3,500 documents take about 20 s.

    with FakeMongod() as server:
        MongoClient(server.uri)

    python -m engagement_assets_tests.conversations.fake_mongod 27017
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Mapping
from typing import Any

import mongomock
from mockupdb import MockupDB
from mongomock.filtering import filter_applies

# MongoDB 5.0, the version mongomock emulates by default; pymongo 4.20 needs at least 9 (MongoDB 4.4).
WIRE_VERSION = 13
NO_SUCH_COMMAND = 59
NAMESPACE_NOT_FOUND = 26
INTERNAL_ERROR = 1
_INDEX_OPTIONS = ("name", "unique", "sparse", "expireAfterSeconds", "partialFilterExpression")
_UPDATE_FIELDS = {"q", "u", "upsert", "multi"}

Database = mongomock.Database
Reply = dict[str, Any]


class FakeMongod:
    """A wire-protocol server on 127.0.0.1; `port=0` picks a free port."""

    def __init__(self, port: int = 0):
        self._backend = mongomock.MongoClient()
        # The default 10 s request timeout would make an idle client's connection fail an assertion.
        self._server = MockupDB(port=port, request_timeout=int(1e6))
        self._server.autoresponds(self._respond)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def uri(self) -> str:
        # mockupdb binds "localhost" for IPv4 only, which is 127.0.0.1; naming it spares pymongo a try on ::1.
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> FakeMongod:
        self._server.run()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeMongod:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _respond(self, request) -> bool:
        if not request.is_command:
            # pymongo 4 sends only commands; hanging up fails a legacy client fast instead of leaving it waiting.
            request.hangup()
            return True
        handler = _COMMANDS.get(request.command_name.lower())
        if handler is None:
            return request.command_err(NO_SUCH_COMMAND, f"no such command: '{request.command_name}'")
        try:
            reply = handler(self._backend[request.namespace], request.doc)
        except mongomock.OperationFailure as err:
            return request.command_err(err.code or INTERNAL_ERROR, str(err))
        except Exception as err:
            # Raising here would kill mockupdb's connection thread and leave the client waiting for a reply.
            return request.command_err(INTERNAL_ERROR, f"fake mongod: {type(err).__name__}: {err}")
        return request.replies(reply)


def _hello(db: Database, cmd: Mapping) -> Reply:
    # No topologyVersion: pymongo then polls instead of streaming awaitable hellos, which this cannot do.
    return {
        "ismaster": True,
        "isWritablePrimary": True,
        "helloOk": True,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": 48_000_000,
        "maxWriteBatchSize": 100_000,
        "localTime": dt.datetime.now(dt.UTC),
        "logicalSessionTimeoutMinutes": 30,
        "minWireVersion": 0,
        "maxWireVersion": WIRE_VERSION,
        "readOnly": False,
    }


def _ok(db: Database, cmd: Mapping) -> Reply:
    return {}


def _build_info(db: Database, cmd: Mapping) -> Reply:
    return db.client.server_info()


def _insert(db: Database, cmd: Mapping) -> Reply:
    collection = db[cmd["insert"]]

    def insert(document: Mapping) -> Reply:
        collection.insert_one(document)
        return {"n": 1}

    return _write_each(cmd["documents"], cmd.get("ordered", True), insert, {"n": 0})


def _update(db: Database, cmd: Mapping) -> Reply:
    collection = db[cmd["update"]]

    def update(op: Mapping) -> Reply:
        unsupported = set(op) - _UPDATE_FIELDS
        if unsupported:
            # Ignoring e.g. arrayFilters would silently write something else than mongod would.
            raise NotImplementedError(f"update options {sorted(unsupported)} are not supported")
        upsert = op.get("upsert", False)
        if op.get("multi"):
            result = collection.update_many(op["q"], op["u"], upsert=upsert)
        elif isinstance(op["u"], Mapping) and not any(key.startswith("$") for key in op["u"]):
            result = collection.replace_one(op["q"], op["u"], upsert=upsert)
        else:
            result = collection.update_one(op["q"], op["u"], upsert=upsert)
        raw = result.raw_result
        return {"n": raw["n"], "nModified": raw["nModified"], "upserted": raw["upserted"]}

    # pymongo's bulk merge reads nModified even when every update failed.
    return _write_each(cmd["updates"], cmd.get("ordered", True), update, {"n": 0, "nModified": 0})


def _delete(db: Database, cmd: Mapping) -> Reply:
    collection = db[cmd["delete"]]

    def delete(op: Mapping) -> Reply:
        remove = collection.delete_one if op.get("limit") == 1 else collection.delete_many
        return {"n": remove(op["q"]).deleted_count}

    return _write_each(cmd["deletes"], cmd.get("ordered", True), delete, {"n": 0})


def _write_each(ops: list, ordered: bool, apply: Callable[[Mapping], Reply], reply: Reply) -> Reply:
    """Apply write ops one by one and report them as mongod does: counts summed, each upsert's `_id`
    by op index, and a failed op (e.g. a duplicate key, code 11000) as a writeError, not a command error."""
    write_errors = []
    for index, op in enumerate(ops):
        try:
            outcome = apply(op)
        except mongomock.WriteError as err:
            write_errors.append({"index": index, "code": err.code or INTERNAL_ERROR, "errmsg": str(err)})
            if ordered:
                break
            continue
        upserted_id = outcome.pop("upserted", None)
        if upserted_id is not None:
            reply.setdefault("upserted", []).append({"index": index, "_id": upserted_id})
        for key, count in outcome.items():
            reply[key] += count
    if write_errors:
        reply["writeErrors"] = write_errors
    return reply


def _find(db: Database, cmd: Mapping) -> Reply:
    documents = db[cmd["find"]].find(
        cmd.get("filter") or {},
        cmd.get("projection") or None,
        skip=cmd.get("skip", 0),
        limit=abs(cmd.get("limit", 0)),
        sort=list(cmd["sort"].items()) if cmd.get("sort") else None,
    )
    return _cursor(db, cmd["find"], list(documents))


def _aggregate(db: Database, cmd: Mapping) -> Reply:
    return _cursor(db, cmd["aggregate"], list(db[cmd["aggregate"]].aggregate(cmd["pipeline"])))


def _count(db: Database, cmd: Mapping) -> Reply:
    # In the count command a skip or limit of 0 means none; mongomock refuses a limit of 0.
    bounds = {key: cmd[key] for key in ("skip", "limit") if cmd.get(key)}
    return {"n": db[cmd["count"]].count_documents(cmd.get("query") or {}, **bounds)}


def _create_indexes(db: Database, cmd: Mapping) -> Reply:
    # mongomock raises DuplicateKeyError (11000) for a unique index over duplicates, as mongod does.
    collection = db[cmd["createIndexes"]]
    for spec in cmd["indexes"]:
        options = {key: spec[key] for key in _INDEX_OPTIONS if key in spec}
        collection.create_index(list(spec["key"].items()), **options)
    return {}


def _list_indexes(db: Database, cmd: Mapping) -> Reply:
    name = cmd["listIndexes"]
    if name not in db.list_collection_names():
        # pymongo turns this code into an empty list, as for mongod.
        raise mongomock.OperationFailure(f"ns does not exist: {db.name}.{name}", NAMESPACE_NOT_FOUND)
    return _cursor(db, name, list(db[name].list_indexes()))


def _list_collections(db: Database, cmd: Mapping) -> Reply:
    collections = [
        {"name": name, "type": "collection", "options": {}, "info": {"readOnly": False}}
        for name in db.list_collection_names()
    ]
    selector = cmd.get("filter") or {}
    matching = [collection for collection in collections if filter_applies(selector, collection)]
    return _cursor(db, "$cmd.listCollections", matching)


def _drop(db: Database, cmd: Mapping) -> Reply:
    db.drop_collection(cmd["drop"])
    return {"ns": f"{db.name}.{cmd['drop']}"}


def _drop_database(db: Database, cmd: Mapping) -> Reply:
    db.client.drop_database(db.name)
    return {"dropped": db.name}


def _cursor(db: Database, collection: str, documents: list) -> Reply:
    # Cursor id 0: everything is in the first batch, so the client never sends getMore.
    return {"cursor": {"id": 0, "ns": f"{db.name}.{collection}", "firstBatch": documents}}


# Keyed by the lower-cased command name: drivers spell some of them in more than one way (isMaster, buildinfo).
_COMMANDS: dict[str, Callable[[Database, Mapping], Reply]] = {
    "hello": _hello,
    "ismaster": _hello,
    "ping": _ok,
    "endsessions": _ok,
    "buildinfo": _build_info,
    "insert": _insert,
    "update": _update,
    "delete": _delete,
    "find": _find,
    "aggregate": _aggregate,
    "count": _count,
    "createindexes": _create_indexes,
    "listindexes": _list_indexes,
    "listcollections": _list_collections,
    "drop": _drop,
    "dropdatabase": _drop_database,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="A MongoDB wire-protocol stand-in on 127.0.0.1 (memory only)."
    )
    parser.add_argument("port", type=int, nargs="?", default=27017, help="0 picks a free port")
    args = parser.parse_args(argv)
    with FakeMongod(args.port) as server:
        # The line a launcher waits for, and the URI to export as MONGODB_URI.
        print(f"fake mongod listening on {server.uri}", flush=True)
        # Ctrl-C stops it; the `with` then closes the sockets.
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
