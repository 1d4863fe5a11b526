"""A local Slack-compatible incoming webhook: records each message, and can fail or stall on request."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self, path: str = "/services/T000/B000/secret-token-0123456789"):
        self.path, self.messages, self.mode, self.stall_seconds = path, [], "ok", 3.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.mode == "stall":
                    time.sleep(receiver.stall_seconds)
                if receiver.mode == "fail" or self.path != receiver.path:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(f"no such hook: {self.path}".encode())  # echoes the secret path
                    return
                receiver.messages.append(json.loads(body)["text"])
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
