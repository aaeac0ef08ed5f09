"""A TCP proxy the fault tests control: put it between the app and Redis or PostgreSQL, then
cut every connection and refuse new ones for a while, as a restarted or unreachable server
would, without touching the machine's own server."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `upstream`; `cut()` drops every connection and refuses new
    ones (they are accepted and closed at once, as a server that is down resets them) until
    `restore()`."""

    def __init__(self, *, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._down = threading.Event()
        self._stopped = threading.Event()
        self.refused = 0
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, name="tcp-proxy", daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._listener.close()
        self._close_all()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until `restore()`."""
        self._down.set()
        self._close_all()

    def restore(self) -> None:
        """Let connections through again."""
        self._down.clear()

    @property
    def is_down(self) -> bool:
        """Whether the proxy is refusing connections."""
        return self._down.is_set()

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            try:
                # RST rather than FIN once closed: the client sees what a dead server gives it.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # Shut down first: close() alone frees nothing while a pump thread is blocked
                # in recv() on the socket (the kernel keeps it open for that call), so an idle
                # connection outlived the "cut". PostgreSQL's end of one idle in a transaction
                # then held its row locks for the rest of the run (the stalled fetch of
                # test_database_restart, a case row in the worker-kill test). shutdown() wakes
                # the pump and both ends see the connection go.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            finally:
                sock.close()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._down.is_set():
                self.refused += 1
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            self.accepted += 1
            with self._lock:
                self._open.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            source.close()
