"""A small NocoDB REST client: reads a table page by page, incrementally by row id and update time, and seeds
tables; retries the answers that heal by themselves and raises clear errors for the rest.

Wire facts (URLs, auth headers, pageInfo, limits, error bodies) are those verified against NocoDB 0.301.3 (the opt-in
test_real_nocodb.py runs this client against it). The API token only ever goes into a request header: no message, log line or
repr built here contains it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import requests

from engagement_assets.errors import redact

log = logging.getLogger(__name__)

API_VERSIONS = ("v1", "v2")
AUTH_HEADERS = ("xc-token", "bearer")
MAX_PAGE_SIZE = 1000  # NocoDB caps `limit` here (DB_QUERY_LIMIT_MAX)
MAX_INSERT_BATCH = 100  # a bigger v2 POST is refused with 422 ERR_MAX_PAYLOAD_LIMIT_EXCEEDED
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# No single wait is longer, whatever Retry-After says: a run should rather fail than hang.
MAX_BACKOFF_SECONDS = 60.0
NOCODB_TIME_FORMAT = "%Y-%m-%d %H:%M:%S+00:00"  # how NocoDB writes DateTime values

_NOT_FOUND = {"ERR_BASE_NOT_FOUND": "base (project)", "ERR_TABLE_NOT_FOUND": "table"}


class NocoDBError(Exception):
    """A NocoDB request failed. `status` is the HTTP status, or None when no answer came back."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NocoDBAuthError(NocoDBError):
    """401: NocoDB refused the API token."""


class NocoDBNotFoundError(NocoDBError):
    """404: the base (project) or the table does not exist; `resource` says which."""

    def __init__(self, message: str, status: int, resource: str) -> None:
        super().__init__(message, status)
        self.resource = resource


class NocoDBRequestError(NocoDBError):
    """422 or another 4xx: NocoDB understood the request and refused it (an unknown field, a bad offset...)."""


class NocoDBUnavailableError(NocoDBError):
    """Every attempt got a retryable answer (429/5xx) or no answer at all."""

    def __init__(self, message: str, status: int | None, attempts: int) -> None:
        super().__init__(message, status)
        self.attempts = attempts


class NocoDBClient:
    """NocoDB's data API over one `requests` session. Tables and the project are addressed by id (`m…`, `p…`):
    NocoDB 0.301 answers 404 for titles."""

    def __init__(
        self,
        base_url: str,
        token: str,
        project_id: str,
        *,
        api_version: str = "v1",
        auth_header: str = "xc-token",
        page_size: int = 100,
        max_retries: int = 3,
        timeout: float = 30.0,
        backoff_seconds: float = 0.5,
    ) -> None:
        _check_choice("api_version", api_version, API_VERSIONS)
        _check_choice("auth_header", auth_header, AUTH_HEADERS)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size={page_size}; NocoDB serves 1 to {MAX_PAGE_SIZE} rows a page")
        if max_retries < 0:
            raise ValueError(f"max_retries={max_retries}; expected 0 or more")
        if not token:
            raise ValueError("a NocoDB API token is required")
        self.base_url = base_url.rstrip("/")
        self.project_id = project_id
        self.api_version = api_version
        self.auth_header = auth_header
        self.page_size = page_size
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_seconds = backoff_seconds
        self._token = token
        self._auth = (
            {"xc-token": token} if auth_header == "xc-token" else {"Authorization": f"Bearer {token}"}
        )
        self._session = requests.Session()

    def __repr__(self) -> str:
        return (
            f"NocoDBClient(base_url={self.base_url!r}, project_id={self.project_id!r}, "
            f"api_version={self.api_version!r}, auth_header={self.auth_header!r}, page_size={self.page_size})"
        )

    def __enter__(self) -> NocoDBClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def table_url(self, table: str) -> str:
        """The list endpoint of `table` in the configured API version."""
        if self.api_version == "v1":
            # NocoDB ignores the `:orgs` segment; the design's URL template puts `v1` there.
            return (
                f"{self.base_url}/api/v1/db/data/v1/{quote(self.project_id, safe='')}/{quote(table, safe='')}"
            )
        return self._v2_records_url(table)

    def _v2_records_url(self, table: str) -> str:
        return f"{self.base_url}/api/v2/tables/{quote(table, safe='')}/records"

    def iter_pages(
        self,
        table: str,
        *,
        id_field: str = "Id",
        after_id: int | None = None,
        updated_field: str = "UpdatedAt",
        updated_after: datetime | None = None,
        start_after: int | None = None,
    ) -> Iterator[list[dict]]:
        """The rows of `table` in id order, a page at a time, as NocoDB sends them.

        Without cursors every row comes back. With `after_id` only rows with a greater id; with `updated_after`
        also (or only, without `after_id`) rows changed after that time. `start_after` resumes the same query
        past that id (an interrupted sync carries on from its last stored batch). Pages are keyset-paginated: always
        offset 0, `where` on the last id seen. Deep offsets are slow and NocoDB answers 422 past the end, and
        rows inserted during the run can neither be skipped nor served twice.
        """
        since = _as_utc(updated_after) if updated_after is not None else None
        # With only an id to resume from, the keyset cursor itself is the incremental condition.
        cursor = after_id if since is None else None
        if start_after is not None:
            cursor = max(cursor, start_after) if cursor is not None else start_after
        url = self.table_url(table)
        while True:
            params = {"offset": 0, "limit": self.page_size, "sort": id_field}
            where = _page_where(id_field, cursor, after_id, updated_field, since)
            if where:
                params["where"] = where
            body = self._request("GET", url, params=params)
            rows = body.get("list") or []
            if not rows:
                return
            kept = (
                rows
                if since is None
                else [r for r in rows if _changed(r, id_field, after_id, updated_field, since)]
            )
            if kept:
                yield kept
            if _is_last_page(rows, body.get("pageInfo") or {}, self.page_size):
                return
            cursor = rows[-1][id_field]

    def insert_rows(self, table: str, rows: Sequence[dict]) -> list[dict]:
        """Create `rows` through the v2 API (whichever version reads), at most 100 a request as NocoDB demands;
        returns NocoDB's `[{"Id": …}, …]`.

        For seeding tables, not exactly-once writes: a chunk retried after a 5xx or a dropped connection is
        written twice if NocoDB had stored it before failing.
        """
        url = self._v2_records_url(table)
        created: list[dict] = []
        for start in range(0, len(rows), MAX_INSERT_BATCH):
            created.extend(self._request("POST", url, json=list(rows[start : start + MAX_INSERT_BATCH])))
        return created

    # -----------------------------------------------------------------------------------------------------
    # One request, with retries

    def _request(self, method: str, url: str, **kwargs) -> dict | list:
        path = urlsplit(url).path
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            response, failure = self._send(method, url, **kwargs)
            if response is not None and response.status_code not in RETRY_STATUSES:
                return self._decode(method, path, response)
            if attempt < attempts:
                delay = self._delay(attempt, response)
                log.warning(
                    "NocoDB %s %s failed (%s); retry %d of %d in %.2f s",
                    method,
                    path,
                    failure,
                    attempt,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)
        status = response.status_code if response is not None else None
        raise NocoDBUnavailableError(
            self._redact(
                f"NocoDB {method} {path} failed after {attempts} attempts; the last one got {failure}"
            ),
            status,
            attempts,
        )

    def _send(self, method: str, url: str, **kwargs) -> tuple[requests.Response | None, str]:
        """The answer (None when there was none) and a description of it for messages."""
        try:
            # Never follow a redirect: the token would go to whatever address it names.
            response = self._session.request(
                method, url, headers=self._auth, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as err:
            return None, f"no answer ({type(err).__name__})"
        return response, f"HTTP {response.status_code}"

    def _delay(self, attempt: int, response: requests.Response | None) -> float:
        """Retry-After when a 429 names one, else exponential backoff with full jitter, so that clients that
        failed together don't retry together."""
        if response is not None and response.status_code == 429:
            retry_after = _seconds(response.headers.get("Retry-After"))
            if retry_after is not None:
                return min(retry_after, MAX_BACKOFF_SECONDS)
        return random.uniform(0, min(self.backoff_seconds * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))

    def _decode(self, method: str, path: str, response: requests.Response) -> dict | list:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_redirect:
            raise NocoDBRequestError(
                f"NocoDB {method} {path} answered with a redirect (HTTP {response.status_code}) to "
                f"{_address(response.headers.get('Location', ''))}; it is not followed, so the token is never "
                "sent elsewhere: set NOCODB_BASE_URL to the address NocoDB answers at",
                response.status_code,
            )
        if not response.ok:
            raise self._error(method, path, response.status_code, body)
        if body is None:
            raise NocoDBError(f"NocoDB {method} {path} answered HTTP {response.status_code} without JSON")
        return body

    def _error(self, method: str, path: str, status: int, body: object) -> NocoDBError:
        code, detail = _error_detail(body)
        where = f"NocoDB {method} {path}"
        if status == 401:
            message = (
                f"{where}: the API token was refused (HTTP 401{detail}); check NOCODB_API_TOKEN and whether "
                f"this server takes it as {self.auth_header}"
            )
            return NocoDBAuthError(self._redact(message), status)
        if status == 404:
            resource = _NOT_FOUND.get(code, "resource")
            message = (
                f"{where}: the {resource} was not found (HTTP 404{detail}); NocoDB addresses bases and tables "
                "by id (p…, m…), not by title"
            )
            return NocoDBNotFoundError(self._redact(message), status, resource)
        if 400 <= status < 500:
            return NocoDBRequestError(
                self._redact(f"{where}: NocoDB refused the request (HTTP {status}{detail})"), status
            )
        return NocoDBError(self._redact(f"{where}: HTTP {status}{detail}"), status)

    def _redact(self, text: str) -> str:
        # NocoDB's bodies don't echo the token, but a proxy's might: never let it reach a message.
        return redact(text, also=(self._token,))


def _address(location: str) -> str:
    """Where a redirect points, as an error may say it: scheme and host only (no path, query or userinfo)."""
    parts = urlsplit(location)
    return f"{parts.scheme}://{parts.hostname}" if parts.hostname else "another address"


# ---------------------------------------------------------------------------------------------------------
# Pagination and the incremental condition


def _page_where(
    id_field: str, cursor: int | None, after_id: int | None, updated_field: str, since: datetime | None
) -> str | None:
    """The `where` of one page: past the keyset cursor, and new or updated since the last run.

    The update-time condition is `(UpdatedAt,ge,exactDate,YYYY-MM-DD HH:MM:SS+00:00)`. For DateTime fields
    nocodb-sdk takes the first value token as a sub-operator and rejects a bare time as "not supported"
    (`handleDataTypes` in packages/nocodb-sdk/src/lib/filterHelpers; 0.301.3 answers 422), so `exactDate` is
    required. A real 0.301.3 compares the time of day too (engagement_assets_tests/conversations/
    test_real_nocodb.py); older releases compared by day only (issue #9798). `ge` selects a superset under
    both readings, and `_changed` then keeps exactly the rows updated after `since`. Groups
    nest in parentheses and join with ~and / ~or (nocodb-sdk query-filter-parser.spec.ts, "complex nested
    logic"); the time is sent in UTC with its offset, which NocoDB honours (#9798).
    """
    clauses = []
    if cursor is not None:
        clauses.append(f"({id_field},gt,{cursor})")
    if since is not None:
        updated = f"({updated_field},ge,exactDate,{since.strftime(NOCODB_TIME_FORMAT)})"
        clauses.append(updated if after_id is None else f"(({id_field},gt,{after_id})~or{updated})")
    return "~and".join(clauses) or None


def _changed(row: dict, id_field: str, after_id: int | None, updated_field: str, since: datetime) -> bool:
    """Whether a row the server selected is really new (id past `after_id`) or updated after `since`."""
    if after_id is not None and row[id_field] > after_id:
        return True
    value = row.get(updated_field)
    if value is None:
        return False
    try:
        updated = _as_utc(datetime.fromisoformat(str(value)))
    except ValueError:
        return True  # a time we cannot read: reprocessing the row is cheaper than losing it
    return updated > since


def _is_last_page(rows: list[dict], page_info: dict, requested: int) -> bool:
    # The server may serve fewer rows than asked (its DB_QUERY_LIMIT_MAX can be lower than ours), so a short
    # page is judged against the page size it reports.
    page_size = page_info.get("pageSize") or requested
    return bool(page_info.get("isLastPage")) or len(rows) < page_size


# ---------------------------------------------------------------------------------------------------------
# Small helpers


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r}; expected one of {allowed}")


def _as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC, as NocoDB does with a time without an offset."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _seconds(header: str | None) -> float | None:
    """Retry-After in seconds; an HTTP-date (or anything else) falls back to backoff."""
    if header is None:
        return None
    try:
        value = float(header)
    except ValueError:
        return None
    return value if value >= 0 else None


def _error_detail(body: object) -> tuple[str | None, str]:
    """NocoDB's error code and a `: CODE: message` suffix for messages. NocoDB answers either
    `{"error": CODE, "message": …}` or `{"msg": …}`."""
    if not isinstance(body, dict):
        return None, ""
    code = body.get("error")
    text = body.get("message") or body.get("msg")
    parts = [str(part) for part in (code, text) if part]
    return (str(code) if code else None), (": " + ": ".join(parts) if parts else "")
