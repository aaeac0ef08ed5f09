"""Engines and sessions, with the SQLite settings that let web and worker share one file."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import weakref
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("hotline.database")

GATE_TIMEOUT_SECONDS = 30.0
# About as often as SQLite's own wal_autocheckpoint (1000 pages) for a few pages a commit.
CHECKPOINT_EVERY_COMMITS = 250


class SQLiteWriteGate:
    """Lets one transaction at a time at a SQLite file: threads queue on a mutex, processes
    on a file lock, and each waiter wakes the moment the lock is free.

    SQLite's own busy handler polls with sleeps of up to 100 ms, which under a burst of
    webhooks turned a 0.05 ms insert into a 500 ms p99.
    """

    def __init__(self, database_path: str) -> None:
        self._mutex = threading.Lock()
        self._lock_path = database_path + ".writelock"
        # One descriptor per process, kept open: opening and closing it per transaction cost
        # two more system calls inside the gate, each a chance to lose the GIL while holding it.
        self._lock_fd = -1
        self._lock_pid = -1
        self._finalizer = weakref.finalize(self, _close_descriptor, [-1])
        self._commits = 0
        self._checkpointing = threading.Lock()

    def acquire(self) -> None:
        """Wait for the gate (one process-wide mutex, then the cross-process file lock)."""
        if not self._mutex.acquire(timeout=GATE_TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("database is locked (write gate timed out)")
        try:
            fcntl.flock(self._descriptor(), fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise

    def release(self) -> None:
        """Open the gate for the next transaction."""
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def _descriptor(self) -> int:
        # Called with the mutex held. A forked child must not share its parent's open file:
        # flock locks belong to the open file, so parent and child would not exclude each other.
        if self._lock_pid != os.getpid():
            inherited = self._lock_fd
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._lock_pid = os.getpid()
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _close_descriptor, [self._lock_fd])
            if inherited >= 0:
                os.close(inherited)  # the parent's lock is unaffected: it still holds its own
        return self._lock_fd

    def checkpoint_due(self) -> bool:
        """Whether this commit should be followed by a WAL checkpoint, outside the gate.

        SQLite's automatic checkpoint runs inside the commit, so inside the gate, and it syncs
        the WAL and the database file: every writer in every process waited for two fsyncs.
        """
        self._commits += 1
        return self._commits % CHECKPOINT_EVERY_COMMITS == 0

    def checkpoint(self, connection: sqlite3.Connection) -> None:
        """Copy the WAL into the database without blocking writers (one thread at a time)."""
        if self._checkpointing.acquire(blocking=False):
            try:
                # PASSIVE never waits for readers or writers, and never calls the busy handler.
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                # The commit before it stands; the next checkpoint copies these pages too.
                log.warning("WAL checkpoint failed", exc_info=True)
            finally:
                self._checkpointing.release()


def _close_descriptor(descriptor: list[int]) -> None:
    if descriptor[0] >= 0:
        with contextlib.suppress(OSError):
            os.close(descriptor[0])


def _gated_connection_class(gate: SQLiteWriteGate) -> type[sqlite3.Connection]:
    class GatedConnection(sqlite3.Connection):
        """A pysqlite connection whose transactions pass through the write gate."""

        holds_gate = False

        def begin_immediate(self) -> None:
            gate.acquire()
            self.holds_gate = True
            try:
                self.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._open_gate()
                raise

        def commit(self) -> None:
            checkpoint = self.holds_gate and gate.checkpoint_due()
            try:
                super().commit()
            finally:
                self._open_gate()
            if checkpoint:
                gate.checkpoint(self)

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self._open_gate()

        def _open_gate(self) -> None:
            if self.holds_gate:
                self.holds_gate = False
                gate.release()

    return GatedConnection


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a write gate and enforced foreign keys."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, **kwargs)

    database_path = make_url(url).database or ":memory:"
    gate = SQLiteWriteGate(database_path)
    # isolation_level=None hands transaction control to SQLAlchemy (pysqlite's own is
    # broken for savepoints), so each transaction begins IMMEDIATE, through the gate.
    engine = create_engine(
        url,
        connect_args={
            "timeout": GATE_TIMEOUT_SECONDS,
            "isolation_level": None,
            "factory": _gated_connection_class(gate),
        },
        **kwargs,
    )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers go on while one writes; NORMAL is durable in WAL mode.
        # Checkpoints are run by the gate after a commit, outside it (wal_autocheckpoint=0).
        pragmas = (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "wal_autocheckpoint=0",
        )
        for pragma in pragmas:
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that later tries to write
        # while another holds the lock fails at once with "database is locked".
        connection.connection.dbapi_connection.begin_immediate()

    return engine


class Database:
    """An engine and its session factory; one per process and URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        """A new session; the caller owns its transaction."""
        return self.sessions()

    def dispose(self) -> None:
        """Close pooled connections (after fork, or at the end of tests)."""
        self.engine.dispose()
