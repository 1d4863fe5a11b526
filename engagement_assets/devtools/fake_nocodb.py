"""A fake NocoDB on 127.0.0.1 that answers the data API the way NocoDB 0.301.3 does, for tests and the demo.

    with FakeNocoDB(token="t") as fake:
        table = fake.create_table("conversations")
        fake.add_rows(table, [{"user_id": "u1", "status": "open"}])
        rows = requests.get(f"{fake.url}/api/v2/tables/{table}/records", headers={"xc-token": "t"}).json()

Behaviour follows what a live NocoDB 0.301.3 answers (the opt-in test_real_nocodb.py checks it) and, where that test is
silent, NocoDB's source: `PagedResponseImpl` for pageInfo and the offset check, `extractLimitAndOffset` for
limits, nocodb-sdk's where parser and `handleDataTypes` for filters. Columns are untyped except the system
DateTime fields CreatedAt and UpdatedAt; of the date sub-operators only `exactDate` is understood; values in
`where` cannot be quoted; views and links are not modelled.
"""

from __future__ import annotations

import json
import math
import operator
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DEFAULT_LIMIT = 25  # the server's default, although the docs say 10
MAX_LIMIT = 1000
MAX_INSERT = 100
SYSTEM_FIELDS = ("Id", "CreatedAt", "UpdatedAt")
DATETIME_FIELDS = frozenset({"CreatedAt", "UpdatedAt"})
TIME_FORMAT = "%Y-%m-%d %H:%M:%S+00:00"

AUTH_REQUIRED = {"error": "ERR_AUTHENTICATION_REQUIRED", "message": "Authentication required - Invalid token"}
FAULT_BODIES = {
    429: {"msg": "ThrottlerException: Too Many Requests"},
    500: {"msg": "Internal Server Error"},
    502: {"msg": "Bad Gateway"},
    503: {"msg": "Service Unavailable"},
    504: {"msg": "Gateway Timeout"},
}

_V1_DATA = re.compile(r"^/api/v1/db/data/[^/]+/(?P<base>[^/]+)/(?P<table>[^/]+)(?P<count>/count)?$")
_V2_DATA = re.compile(r"^/api/v2/tables/(?P<table>[^/]+)/records(?P<count>/count)?$")

_COMPARISONS: dict[str, Callable[[object, object], bool]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "not": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "gte": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "lte": operator.le,
}
_NEGATIVE = frozenset({"neq", "not"})  # NocoDB counts an empty cell as "not equal" to anything


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake received. `auth` names the header that carried a token: xc-token, bearer or None."""

    method: str
    path: str
    query: dict[str, str]
    auth: str | None


class _Refusal(Exception):
    """An error answer, raised from anywhere while answering a request."""

    def __init__(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


@dataclass
class _Table:
    id: str
    title: str
    columns: list[str] = field(default_factory=lambda: list(SYSTEM_FIELDS))
    rows: list[dict] = field(default_factory=list)
    next_id: int = 1


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FakeNocoDB:
    """The data API of one NocoDB base, served over real HTTP. Use as a context manager, or start()/stop().

    `clock` stamps CreatedAt/UpdatedAt (tests pass a controllable one). `max_limit` plays DB_QUERY_LIMIT_MAX.
    `dates_by_day` compares `exactDate` filters by calendar day even when a time is given, as NocoDB releases
    did before issue #9798 was fixed.
    """

    def __init__(
        self,
        token: str = "t",
        *,
        base_id: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_limit: int = MAX_LIMIT,
        dates_by_day: bool = False,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.token = token
        self.base_id = base_id or f"p{secrets.token_hex(7)}"
        self.host, self.port = host, port
        self.max_limit = max_limit
        self.dates_by_day = dates_by_day
        self.clock = clock
        self.requests: list[LoggedRequest] = []
        self._tables: dict[str, _Table] = {}
        self._faults: list[int | str | None] = []  # a status, a redirect's location, or nothing
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -----------------------------------------------------------------------------------------------------
    # Lifecycle

    def __enter__(self) -> FakeNocoDB:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> FakeNocoDB:
        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        # A short poll interval keeps stop() fast; the default half second adds up over a test run.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-nocodb", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -----------------------------------------------------------------------------------------------------
    # Seeding and fault injection, for tests and the demo

    def create_table(self, title: str) -> str:
        """A new empty table with NocoDB's system fields; returns its id (`m…`), the only name the API takes."""
        table_id = f"m{secrets.token_hex(7)}"
        with self._lock:
            self._tables[table_id] = _Table(table_id, title)
        return table_id

    def add_rows(self, table_id: str, rows: Iterable[dict]) -> list[int]:
        """Store rows as NocoDB does on insert (Id assigned, CreatedAt now, UpdatedAt empty); returns the ids."""
        with self._lock:
            return self._store(self._table(table_id), list(rows))

    def update_row(self, table_id: str, row_id: int, **fields: object) -> None:
        """Change a row's fields and stamp UpdatedAt with the clock, as an edit in NocoDB does."""
        with self._lock:
            table = self._table(table_id)
            row = next((r for r in table.rows if r["Id"] == row_id), None)
            if row is None:
                raise KeyError(f"table {table_id} has no row {row_id}")
            _add_columns(table, fields)
            row.update({k: v for k, v in fields.items() if k not in SYSTEM_FIELDS})
            row["UpdatedAt"] = self._now()

    def fail_next(self, *statuses: int, after: int = 0) -> None:
        """Answer the next requests with these statuses, one each, before looking at them (as a proxy or an
        overloaded server would); with `after`, only once that many more requests have been answered (the
        server goes away in the middle of a run). A 429 says `Retry-After: 0`."""
        unknown = [s for s in statuses if s not in FAULT_BODIES]
        if unknown:
            raise ValueError(f"cannot inject {unknown}; expected some of {sorted(FAULT_BODIES)}")
        with self._lock:
            self._faults.extend([None] * after + list(statuses))

    def redirect_next(self, location: str) -> None:
        """Answer the next request with a 307 to `location` (a misconfigured proxy or a moved server)."""
        with self._lock:
            self._faults.append(location)

    def _table(self, table_id: str) -> _Table:
        try:
            return self._tables[table_id]
        except KeyError:
            raise KeyError(f"no table {table_id!r}; create_table returns the id to use") from None

    def _store(self, table: _Table, records: list[dict]) -> list[int]:
        ids = []
        for record in records:
            _add_columns(table, record)
            row = {**{k: v for k, v in record.items() if k not in SYSTEM_FIELDS}, "Id": table.next_id}
            row.update(CreatedAt=self._now(), UpdatedAt=None)
            table.rows.append(row)
            ids.append(table.next_id)
            table.next_id += 1
        return ids

    def _now(self) -> str:
        return self.clock().astimezone(UTC).strftime(TIME_FORMAT)

    # -----------------------------------------------------------------------------------------------------
    # Answering one request

    def answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict, object]:
        """(status, extra headers, JSON body) for one request; the HTTP handler only does the I/O."""
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        auth, authorized = self._check_token(headers)
        with self._lock:
            self.requests.append(LoggedRequest(method, parts.path, query, auth))
            fault = self._faults.pop(0) if self._faults else None  # None: this request goes through
        try:
            if isinstance(fault, str):
                raise _Refusal(307, {"msg": "Temporary Redirect"}, {"Location": fault})
            if fault is not None:
                raise _Refusal(fault, FAULT_BODIES[fault], {"Retry-After": "0"} if fault == 429 else None)
            if not authorized:
                raise _Refusal(401, AUTH_REQUIRED)
            return 200, {}, self._route(method, parts.path, query, body)
        except _Refusal as refusal:
            return refusal.status, refusal.headers, refusal.body
        except Exception as err:  # a bug in the fake answers 500, as NocoDB does for its own
            return 500, {}, {"msg": f"Internal Server Error: {type(err).__name__}: {err}"}

    def _check_token(self, headers: dict[str, str]) -> tuple[str | None, bool]:
        """Which header carried a token, and whether it is the right one. xc-token wins when both are sent."""
        lowered = {k.lower(): v for k, v in headers.items()}
        if "xc-token" in lowered:
            return "xc-token", lowered["xc-token"] == self.token
        scheme, _, credentials = lowered.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return "bearer", credentials.strip() == self.token
        return None, False

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> object:
        v1 = _V1_DATA.match(path)
        if v1 and v1["base"] != self.base_id:
            raise _Refusal(404, {"error": "ERR_BASE_NOT_FOUND", "message": f"Base '{v1['base']}' not found"})
        match = v1 or _V2_DATA.match(path)
        with self._lock:
            table = self._tables.get(match["table"]) if match else None
            if match and table is None:
                raise _Refusal(
                    404, {"error": "ERR_TABLE_NOT_FOUND", "message": f"Table '{match['table']}' not found"}
                )
            if match and method == "GET":
                return self._count(table, query) if match["count"] else self._list(table, query)
            if match and method == "POST" and not v1 and not match["count"]:
                return self._insert(table, body)
        raise _Refusal(404, {"message": f"Cannot {method} {path}", "error": "Not Found", "statusCode": 404})

    def _list(self, table: _Table, query: dict[str, str]) -> dict:
        rows = self._select(table, query)
        limit = _limit(_param(query, "limit", "l"), self.max_limit)
        offset = _offset(_param(query, "offset", "o"))
        if offset and offset >= len(rows):
            raise _Refusal(422, {"error": "ERR_INVALID_OFFSET_VALUE"})
        fields = _fields(_param(query, "fields", "f"), table.columns)
        page = [{name: row.get(name) for name in fields} for row in rows[offset : offset + limit]]
        return {"list": page, "pageInfo": page_info(len(rows), limit, offset)}

    def _count(self, table: _Table, query: dict[str, str]) -> dict:
        return {"count": len(self._select(table, query))}

    def _select(self, table: _Table, query: dict[str, str]) -> list[dict]:
        """The table's rows that pass `where`, in `sort` order (by Id without one)."""
        where = _param(query, "where", "w")
        matches = compile_where(where, table.columns, self.dates_by_day) if where else None
        rows = [row for row in table.rows if matches is None or matches(row)]
        return _sorted(rows, _param(query, "sort", "s"), table.columns)

    def _insert(self, table: _Table, body: bytes) -> object:
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            raise _Refusal(400, {"msg": "Invalid JSON in request body"}) from None
        records = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(record, dict) for record in records):
            raise _Refusal(400, {"msg": "Expected a record object or an array of record objects"})
        if len(records) > MAX_INSERT:
            raise _Refusal(
                422,
                {
                    "error": "ERR_MAX_PAYLOAD_LIMIT_EXCEEDED",
                    "message": f"Maximum {MAX_INSERT} records during insert",
                },
            )
        created = [{"Id": row_id} for row_id in self._store(table, records)]
        return created if isinstance(payload, list) else created[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' sessions expect

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers, payload = self.server.fake.answer(self.command, self.path, dict(self.headers), body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the request log is `FakeNocoDB.requests`; stderr stays quiet in tests


# ---------------------------------------------------------------------------------------------------------
# Paging (NocoDB's extractLimitAndOffset and PagedResponseImpl)


def page_info(total: int, limit: int, offset: int) -> dict:
    """NocoDB's pageInfo, quirk included: an offset that is not a multiple of the limit gives a fractional page,
    which is replaced by `offset`, and `isLastPage` is then computed from that fraction (often wrongly)."""
    page = offset / limit + 1 if offset else 1
    info = {
        "totalRows": total,
        "page": page,
        "pageSize": limit,
        "isFirstPage": page == 1,
        "isLastPage": page >= (math.ceil(total / limit) or 1),
    }
    if page % 1:
        del info["page"]
        info["offset"] = offset
    else:
        info["page"] = int(page)
    return info


def _param(query: dict[str, str], name: str, alias: str) -> str | None:
    return query.get(name) or query.get(alias)


def _limit(raw: str | None, maximum: int) -> int:
    # A limit that is not a positive integer is ignored in favour of the default.
    try:
        value = int(raw) if raw is not None else 0
    except ValueError:
        value = 0
    return min(value if value > 0 else DEFAULT_LIMIT, maximum)


def _offset(raw: str | None) -> int:
    try:
        return max(int(raw), 0) if raw is not None else 0
    except ValueError:
        return 0


def _fields(raw: str | None, columns: list[str]) -> list[str]:
    # Unknown names are left out silently, as NocoDB does.
    wanted = {name.strip() for name in raw.split(",")} if raw else None
    return [name for name in columns if wanted is None or name in wanted]


def _sorted(rows: list[dict], raw: str | None, columns: list[str]) -> list[dict]:
    # Stable sorts from the last key to the first give the comma list's precedence.
    for spec in reversed([s.strip() for s in (raw or "").split(",") if s.strip()]):
        name = spec.lstrip("-+")
        _check_field(name, columns)
        rows = sorted(rows, key=_sort_key(name), reverse=spec.startswith("-"))
    return rows


def _sort_key(name: str) -> Callable[[dict], tuple]:
    # Empty cells first in ascending order, as SQL's NULLS FIRST.
    return lambda row: (0,) if row.get(name) is None else (1, row[name])


def _check_field(name: str, columns: list[str]) -> None:
    if name not in columns:
        raise _Refusal(422, {"msg": f"Column alias '{name}' not found."})


def _add_columns(table: _Table, record: dict) -> None:
    # The fake has no schema: a field seen for the first time becomes a column, empty in the other rows.
    table.columns.extend(name for name in record if name not in table.columns)


# ---------------------------------------------------------------------------------------------------------
# where: `(field,op,value)` clauses joined by ~and / ~or / ~not, groups nested in parentheses


@dataclass(frozen=True)
class _Clause:
    field: str
    op: str
    value: str | None


_Group = list[tuple[str, "_Clause | _Group"]]  # (logical op, node) in order


def compile_where(text: str, columns: list[str], dates_by_day: bool = False) -> Callable[[dict], bool]:
    """A row predicate for a `where` parameter; unknown fields and bad syntax are refused before any row is
    looked at, as NocoDB does."""
    return _compile(_WhereParser(text).parse(), columns, dates_by_day)


class _WhereParser:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def parse(self) -> _Group:
        group = self._sequence()
        if self.pos < len(self.text):
            raise _invalid_filter(f"unexpected '{self.text[self.pos]}' at position {self.pos}")
        return group

    def _sequence(self) -> _Group:
        items: _Group = []
        while self._skip_spaces() < len(self.text) and self.text[self.pos] != ")":
            op = self._logical_op(first=not items)
            items.append((op, self._parenthesized()))
        if not items:
            raise _invalid_filter("expected a logical operator like '~not' or opening parenthesis")
        return items

    def _logical_op(self, first: bool) -> str:
        for op in ("and", "or", "not"):
            if self.text.startswith(f"~{op}", self.pos):
                self.pos += len(op) + 1
                return op
        if first:
            return "and"
        raise _invalid_filter("expected a valid logical operator like '~or' or '~and'")

    def _parenthesized(self) -> _Clause | _Group:
        self._expect("(")
        self._skip_spaces()
        nested = self.text.startswith(("(", "~"), self.pos)
        node = self._sequence() if nested else self._clause()
        self._expect(")")
        return node

    def _clause(self) -> _Clause:
        end = self.text.find(")", self.pos)
        if end < 0:
            raise _invalid_filter("expected a closing parentheses ')'")
        parts = [part.strip() for part in self.text[self.pos : end].split(",")]
        self.pos = end
        if len(parts) < 2 or not parts[1]:
            raise _invalid_filter("expected comma ',' followed with operator (and value) after field")
        return _Clause(parts[0], parts[1], ",".join(parts[2:]) if len(parts) > 2 else None)

    def _expect(self, char: str) -> None:
        if self._skip_spaces() >= len(self.text) or self.text[self.pos] != char:
            raise _invalid_filter(f"expected '{char}' at position {self.pos}")
        self.pos += 1

    def _skip_spaces(self) -> int:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.pos


# A live NocoDB 0.301.3 answers every filter it cannot use with 422 (checked by test_real_nocodb.py).
def _invalid_filter(reason: str) -> _Refusal:
    return _Refusal(422, {"msg": f"Invalid filter format: {reason}"})


def _compile(node: _Clause | _Group, columns: list[str], dates_by_day: bool) -> Callable[[dict], bool]:
    if isinstance(node, _Clause):
        return _compile_clause(node, columns, dates_by_day)
    parts = [(op, _compile(child, columns, dates_by_day)) for op, child in node]
    return lambda row: _evaluate_sequence(parts, row)


def _evaluate_sequence(parts: list[tuple[str, Callable[[dict], bool]]], row: dict) -> bool:
    """NocoDB chains the clauses into one SQL WHERE, so AND binds tighter than OR and ~not means AND NOT."""
    alternatives, current = [], True
    for index, (op, matches) in enumerate(parts):
        value = matches(row) != (op == "not")
        if op == "or" and index > 0:
            alternatives.append(current)
            current = value
        else:
            current = current and value
    return any([*alternatives, current])


def _compile_clause(clause: _Clause, columns: list[str], dates_by_day: bool) -> Callable[[dict], bool]:
    _check_field(clause.field, columns)
    if clause.op in ("is", "isnot"):
        return _compile_is(clause)
    if clause.op not in _COMPARISONS:
        raise _invalid_filter(f"'{clause.op}' is not a recognized operator")
    if clause.field in DATETIME_FIELDS:
        return _compile_time_comparison(clause, dates_by_day)
    return lambda row: _compare(clause.op, row.get(clause.field), clause.value or "")


def _compile_is(clause: _Clause) -> Callable[[dict], bool]:
    tests = {
        "null": lambda v: v is None,
        "blank": lambda v: v is None or v == "",
        "notnull": lambda v: v is not None,
        "notblank": lambda v: v is not None and v != "",
        "true": lambda v: v is True,
        "false": lambda v: v is False or v is None,
    }
    test = tests.get((clause.value or "").lower())
    if test is None:
        raise _invalid_filter(f"'{clause.value}' is not a value for '{clause.op}'")
    negate = clause.op == "isnot"
    return lambda row: test(row.get(clause.field)) != negate


def _compare(op: str, value: object, target: str) -> bool:
    if value is None:
        return op in _NEGATIVE
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return _COMPARISONS[op](value, float(target))
        except ValueError:
            return op in _NEGATIVE
    return _COMPARISONS[op](str(value), target)


def _compile_time_comparison(clause: _Clause, dates_by_day: bool) -> Callable[[dict], bool]:
    """DateTime fields take `sub_op,value` (nocodb-sdk's handleDataTypes): only exactDate is modelled. With a
    time, gt/ge/lt/le compare instants; a date alone (or `dates_by_day`) compares calendar days in UTC, and
    eq/neq always do."""
    sub_op, _, raw = (clause.value or "").partition(",")
    if sub_op != "exactDate":
        raise _Refusal(422, {"msg": f"'{sub_op}' is not supported."})
    try:
        target = _parse_time(raw)
    except ValueError:
        raise _Refusal(
            422,
            {
                "error": "ERR_FILTER_VERIFICATION_FAILED",
                "msg": f"Value {raw} is not supported for type DateTime",
            },
        ) from None
    by_day = dates_by_day or len(raw.strip()) == len("YYYY-MM-DD") or clause.op in _NEGATIVE | {"eq"}

    def matches(row: dict) -> bool:
        value = row.get(clause.field)
        if value is None:
            return clause.op in _NEGATIVE
        when = _parse_time(value)
        if by_day:
            return _COMPARISONS[clause.op](when.date(), target.date())
        return _COMPARISONS[clause.op](when, target)

    return matches


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
