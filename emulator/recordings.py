"""Twilio's media store as the app meets it: recordings behind Basic auth, 404 until ready."""

from __future__ import annotations

import base64
import hmac
import threading
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

from emulator.protocol import API_VERSION, EmulatorError, twilio_error


@dataclass
class _Recording:
    wav: bytes
    not_found_first: int
    never_arrives: bool
    hits: int = 0


class RecordingServer:
    """Serves recordings as api.twilio.com does: Basic auth, and 404 until they are ready."""

    def __init__(
        self, *, account_sid: str, auth_token: str, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.account_sid = account_sid
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._authorization = f"Basic {credentials}"
        self._host, self._port = host, port
        self._recordings: dict[str, _Recording] = {}
        self._lock = threading.Lock()  # handler threads count hits while tests call add()/hits()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Listen in a daemon thread; returns self."""
        if self._server is None:
            self._server = ThreadingHTTPServer(
                (self._host, self._port), partial(_RecordingHandler, self)
            )
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # so stop() returns quickly
                name="twilio-recordings",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Where the server listens, e.g. "http://127.0.0.1:54321"."""
        if self._server is None:
            raise EmulatorError("RecordingServer is not started")
        return f"http://{self._host}:{self._server.server_port}"

    def add(
        self,
        recording_sid: str,
        wav: bytes,
        *,
        not_found_first: int = 1,
        never_arrives: bool = False,
    ) -> str:
        """Publish a recording; returns its RecordingUrl (no extension), as Twilio sends it."""
        with self._lock:
            self._recordings[recording_sid] = _Recording(wav, not_found_first, never_arrives)
        return f"{self.base_url}{self._prefix()}{recording_sid}"

    def hits(self, recording_sid: str) -> int:
        """How many authorised GETs that recording got, 404s included."""
        with self._lock:
            recording = self._recordings.get(recording_sid)
            return recording.hits if recording else 0

    def _prefix(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Recordings/"

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for one GET of path."""
        if not hmac.compare_digest((authorization or "").encode(), self._authorization.encode()):
            headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            return 401, headers, twilio_error(20003, "Authenticate", 401)
        sid = path.removeprefix(self._prefix()).removesuffix(".wav")
        with self._lock:
            recording = self._recordings.get(sid) if path.startswith(self._prefix()) else None
            if recording is not None:
                recording.hits += 1
                # Twilio's media store lags the <Record> action: the first fetches 404
                if not recording.never_arrives and recording.hits > recording.not_found_first:
                    return 200, {"Content-Type": "audio/x-wav"}, recording.wav
        message = f"The requested resource {path} was not found"
        return 404, {}, twilio_error(20404, message, 404)


class _RecordingHandler(BaseHTTPRequestHandler):
    def __init__(self, owner: RecordingServer, *args: Any, **kwargs: Any) -> None:
        self.owner = owner  # set first: the base __init__ handles the request straight away
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        status, headers, body = self.owner.answer(path, self.headers.get("Authorization"))
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and the CLI report progress themselves."""
