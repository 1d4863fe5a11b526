"""A small HTTP proxy in front of the local S3 server that injects faults and latency, so the real boto3
client meets real 5xx answers, hung responses, reset connections and cut-short bodies over the wire."""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

# Fault names a plan may hold; "ok" forwards the request untouched.
ERROR_CODES = {"500": "InternalError", "503": "SlowDown"}
HANG = "timeout"
RESET = "reset"
TRUNCATE = "truncate"
SLOW = "slow"  # the body trickles out in small pieces
OK = "ok"
SLOW_PIECE = 16 << 10
SLOW_PAUSE = 0.05


class FaultProxy:
    def __init__(self, upstream: str, hang_seconds: float = 5.0):
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.hang_seconds = hang_seconds
        self.latency_seconds = 0.0  # added to every GET and HEAD, as a far-away bucket would
        self.requests: list[tuple[str, str]] = []
        self._plans: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def plan(self, path_fragment: str, *faults: str) -> None:
        """The next requests whose path contains `path_fragment` meet these faults, in order."""
        with self._lock:
            self._plans[path_fragment].extend(faults)

    def count(self, method: str, path_fragment: str) -> int:
        return sum(1 for m, path in self.requests if m == method and path_fragment in path)

    def next_fault(self, method: str, path: str) -> str:
        with self._lock:
            self.requests.append((method, path))
            for fragment, faults in self._plans.items():
                if fragment in path and faults:
                    return faults.pop(0)
        return OK

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(proxy: FaultProxy):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes: with Nagle on, small bodies wait ~40 ms for the
        # client's delayed ACK, which would swamp the latency a test asks for.
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:
            return

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fault = proxy.next_fault(self.command, self.path)
            if self.command in ("GET", "HEAD") and proxy.latency_seconds:
                time.sleep(proxy.latency_seconds)
            if fault in ERROR_CODES:
                return self._error(int(fault), ERROR_CODES[fault])
            if fault == HANG:
                time.sleep(proxy.hang_seconds)
            if fault == RESET:
                return self._reset()
            status, headers, payload = self._forward(body)
            if fault == SLOW:
                return self._send(status, headers, payload, trickle=True)
            if fault == TRUNCATE and len(payload) > 1:
                self._send(status, headers, payload[: len(payload) // 2], declared=len(payload))
                self.close_connection = True
                return None
            return self._send(status, headers, payload)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

        def _forward(self, body: bytes):
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            try:
                headers = {key: value for key, value in self.headers.items() if key.lower() != "connection"}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                return response.status, response.getheaders(), payload
            finally:
                upstream.close()

        def _send(
            self, status: int, headers, payload: bytes, declared: int | None = None, trickle=False
        ) -> None:
            self.send_response(status)
            upstream_length = None
            for key, value in headers:
                if key.lower() == "content-length":
                    upstream_length = value
                elif key.lower() not in ("transfer-encoding", "connection", "date", "server"):
                    self.send_header(key, value)
            length = (
                upstream_length
                if self.command == "HEAD"
                else declared
                if declared is not None
                else len(payload)
            )
            self.send_header("Content-Length", str(length or 0))
            self.end_headers()
            if self.command == "HEAD":
                return
            pieces = (
                [payload[i : i + SLOW_PIECE] for i in range(0, len(payload), SLOW_PIECE)]
                if trickle
                else [payload]
            )
            for piece in pieces:
                self.wfile.write(piece)
                if trickle:
                    self.wfile.flush()
                    time.sleep(SLOW_PAUSE)

        def _error(self, status: int, code: str) -> None:
            body = f"<Error><Code>{code}</Code><Message>injected fault</Message></Error>".encode()
            self._send(status, [("Content-Type", "application/xml")], body)

        def _reset(self) -> None:
            # SO_LINGER with a zero timeout makes close() send RST: the client sees "connection reset".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

    return Handler
