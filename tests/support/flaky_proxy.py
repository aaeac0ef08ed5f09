"""A tiny HTTP proxy in front of Prism that can be told to fail, and remembers what passed."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import requests


class FlakyProxy:
    """Forwards to `upstream`; `fail_next(n)` makes the next n requests answer 503."""

    def __init__(self, *, upstream: str) -> None:
        self.upstream = upstream
        self.forwarded: list[dict[str, Any]] = []
        self.failed: list[dict[str, str]] = []
        self._failures_left: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def fail_next(self, count: int, *, to: str) -> None:
        """Answer 503 to the next `count` messages for `to` (other traffic passes)."""
        with self._lock:
            self._failures_left[to] = count

    def failures_for(self, number: str) -> int:
        """How many messages for `number` were failed on purpose."""
        with self._lock:
            return sum(1 for form in self.failed if form.get("To") == number)

    def messages_to(self, number: str) -> list[dict[str, Any]]:
        """Message creations that reached Prism for this recipient."""
        with self._lock:
            return [
                entry
                for entry in self.forwarded
                if entry["path"].endswith("/Messages.json") and entry["form"].get("To") == number
            ]

    def __enter__(self) -> FlakyProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                recipient = form.get("To", "")
                with proxy._lock:
                    fail = proxy._failures_left.get(recipient, 0) > 0
                    if fail:
                        proxy._failures_left[recipient] -= 1
                        proxy.failed.append(form)
                if fail:
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    payload = b'{"code": 20503, "message": "Service unavailable", "status": 503}'
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {
                    key: value
                    for key, value in self.headers.items()
                    if key.lower() not in ("host", "content-length")
                }
                answer = requests.post(
                    proxy.upstream + self.path, data=body, headers=headers, timeout=30
                )
                with proxy._lock:
                    proxy.forwarded.append(
                        {
                            "path": self.path,
                            "form": form,
                            "status": answer.status_code,
                            "response": answer.text,
                        }
                    )
                self.send_response(answer.status_code)
                self.send_header(
                    "Content-Type", answer.headers.get("Content-Type", "application/json")
                )
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
