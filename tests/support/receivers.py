"""Local stand-ins for a department's systems: a webhook endpoint that checks signatures, and a
real SMTP server (aiosmtpd). Both remember what reached them, for tests to read.

Usage in a test:

    with WebhookReceiver(secret="s3cret") as receiver:
        ... configure a department's webhook as receiver.url ...
        wait_until(lambda: receiver.accepted_for(case_number), timeout=30, what="the push")

The SMTP server the worker sends to is given by SMTP_HOST/SMTP_PORT in the session's
environment (tests/conftest.py `environ`); `shared_smtp_receiver(port)` starts it once per test
process, whichever test module asks first.
"""

from __future__ import annotations

import atexit
import email
import email.policy
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from aiosmtpd.controller import Controller

from delivery.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, verify_signature


@dataclass(frozen=True)
class ReceivedPush:
    """One POST that reached the webhook receiver, and what it answered."""

    delivery_id: str
    headers: dict[str, str]
    body: bytes
    signature_valid: bool
    status: int

    @property
    def document(self) -> dict[str, Any]:
        """The JSON body."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def case_number(self) -> str | None:
        """The number of the case the push is about."""
        return (self.document.get("case") or {}).get("number")


class WebhookReceiver:
    """A department's endpoint over real HTTP: checks X-Hotline-Signature with its secret,
    answers 401 to a bad one, and can be told to fail the next few pushes (503 by default),
    to fail every push until told otherwise (`fail_all`), to keep its answers back until
    released (`hold`: the sender's job stays in flight), or to go down (`go_down`: nothing
    listens on its port, so a push's connection is refused) and come back on the same URL.

    `clock` is the receiver's own wall clock, which the signature's timestamp must be within
    300 s of: a test that moves the sender's clock moves this one alike, as two hosts kept on
    time by NTP would agree."""

    def __init__(
        self, *, secret: str, port: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        self.secret = secret
        self.clock = clock
        self.received: list[ReceivedPush] = []
        self._failures: list[int] = []
        self._failing: int | None = None
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._released.set()
        self._push_held = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._port = self._server.server_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self._port}/hotline/push"

    def fail_next(self, count: int, *, status: int = 503) -> None:
        """Answer `status` to the next `count` pushes, however well signed."""
        with self._lock:
            self._failures.extend([status] * count)

    def fail_all(self, status: int | None = 503) -> None:
        """Answer `status` to every push from now on (None: answer as usual again)."""
        with self._lock:
            self._failing = status

    def hold(self) -> None:
        """Keep every push's answer back until `release` (at most a minute)."""
        self._push_held.clear()
        self._released.clear()

    def release(self) -> None:
        """Answer the pushes held back, and answer at once from now on."""
        self._released.set()

    def wait_for_a_held_push(self, timeout: float) -> bool:
        """Whether a push arrived, and is being held, within `timeout` seconds."""
        return self._push_held.wait(timeout)

    def go_down(self) -> None:
        """Stop listening: pushes meet a refused connection until `come_back`."""
        self.stop()

    def come_back(self) -> None:
        """Listen again on the same port, keeping what was received before."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), self._handler_class())
        self.start()

    def accepted_for(self, case_number: str) -> list[ReceivedPush]:
        """The pushes about a case that were acknowledged (2xx), in arrival order."""
        with self._lock:
            return [
                push
                for push in self.received
                if push.status < 300 and push.case_number == case_number
            ]

    def received_for(self, case_number: str) -> list[ReceivedPush]:
        """Every push about a case that arrived, whatever the answer."""
        with self._lock:
            return [push for push in self.received if push.case_number == case_number]

    def start(self) -> Self:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _answer(self, headers: dict[str, str], body: bytes) -> ReceivedPush:
        valid = verify_signature(self.secret, headers.get(SIGNATURE_HEADER), body, now=self.clock())
        with self._lock:
            if not valid:
                status = 401
            elif self._failures:
                status = self._failures.pop(0)
            elif self._failing is not None:
                status = self._failing
            else:
                status = 200
            push = ReceivedPush(
                delivery_id=headers.get(DELIVERY_HEADER, ""),
                headers=headers,
                body=body,
                signature_valid=valid,
                status=status,
            )
            self.received.append(push)
        return push

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                """Check the push's signature and answer as told."""
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not receiver._released.is_set():
                    receiver._push_held.set()
                    receiver._released.wait(timeout=60)
                push = receiver._answer(dict(self.headers.items()), body)
                answer = json.dumps({"received": push.delivery_id}).encode()
                self.send_response(push.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class _MailHandler:
    """aiosmtpd's handler: keeps each message, refuses the recipients it is told to."""

    def __init__(self, owner: SMTPReceiver) -> None:
        self.owner = owner

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        """Take a recipient, unless told to refuse it."""
        if address in self.owner.refused_recipients:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message."""
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.owner.lock:
            self.owner.messages.append(message)
            self.owner.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 Message accepted for delivery"


class SMTPReceiver:
    """A real SMTP server on a local port (aiosmtpd), keeping every message it accepts."""

    def __init__(self, *, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refused_recipients: set[str] = set()
        self.lock = threading.Lock()
        self._controller = Controller(_MailHandler(self), hostname=host, port=port)

    def messages_for(self, case_number: str) -> list[EmailMessage]:
        """The messages whose subject names this case."""
        with self.lock:
            return [m for m in self.messages if case_number in str(m.get("Subject", ""))]

    def start(self) -> Self:
        """Listen, in aiosmtpd's own thread."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()


_shared: dict[int, SMTPReceiver] = {}
_shared_lock = threading.Lock()


def shared_smtp_receiver(port: int) -> SMTPReceiver:
    """The one SMTP server of this test process on `port`, started on first use (the worker
    sends to the port the session's environment names, so every module must share it)."""
    with _shared_lock:
        if port not in _shared:
            receiver = SMTPReceiver(port=port).start()
            atexit.register(receiver.stop)
            _shared[port] = receiver
        return _shared[port]


def make_department(session: Any, **channels: str) -> str:
    """A fresh department with these channels (`webhook_url`, `webhook_secret`, `email`,
    `sms_number`); tests configure their own, so the directory's departments stay as loaded
    for everyone else. Flushed, not committed; returns its code."""
    from cases import staff
    from cases.models import Department

    code = f"t_{uuid.uuid4().hex[:12]}"
    session.add(Department(code=code, names={"zh-CN": "测试局", "en-US": "Test Bureau"}))
    session.flush()
    staff.set_department_channels(session, code=code, **channels)
    return code


def new_caller_number() -> str:
    """A mainland mobile number no other test uses, so "the caller's latest case" is ours."""
    return "+86139" + f"{uuid.uuid4().int % 10**8:08d}"
