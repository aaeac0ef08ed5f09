"""The database: engines, sessions, the SQLite write gate and the group commit.

It belongs to the shell: the domain (`cases`) takes a session and never opens one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, Executable, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("hotline.database")

GATE_TIMEOUT_SECONDS = 30.0
# About as often as SQLite's own wal_autocheckpoint (1000 pages) for a few pages a commit.
CHECKPOINT_EVERY_COMMITS = 250
# A write not committed by then fails (the caller apologises; a retried webhook is idempotent).
WRITE_TIMEOUT_SECONDS = 2 * GATE_TIMEOUT_SECONDS
# How long a write queued without a waiter may wait for others to share its transaction.
WRITE_BEHIND_LINGER_SECONDS = 0.02
# Queued writes not yet committed, past which `submit` waits like `execute` (backpressure:
# a database that cannot keep up slows the callers instead of filling memory). Sized for a
# surge of calls during which a writer stalls behind another process's transaction and a
# checkpoint; it is a few megabytes of rows.
WRITE_BEHIND_MAX_PENDING = 5000


class SQLiteWriteGate:
    """Lets one transaction at a time at a SQLite file: threads queue on a mutex, processes
    on a file lock, and each waiter wakes the moment the lock is free.

    SQLite's own busy handler polls with sleeps of up to 100 ms, which under a burst of
    webhooks made a short insert wait for most of that sleep.
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


# How long PostgreSQL lets a session sit idle inside a transaction before ending it.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 300_000


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a write gate and enforced foreign keys; PostgreSQL
    ends a session left idle in a transaction (`IDLE_IN_TRANSACTION_TIMEOUT_MS`)."""
    if url.startswith("postgresql"):
        # A client that vanished mid-transaction (a network cut, a proxy that dropped it) would
        # otherwise keep its row locks until TCP noticed, hours later: every job needing the
        # row waited, and the re-drive sweeps, which skip a locked row, never saw it again.
        # No transaction of ours waits on anything slow, so minutes idle is a lost client.
        options = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
        kwargs.setdefault("connect_args", {}).setdefault("options", options)
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

    # A batch of inserts (the group commit's executemany) goes as one multi-row INSERT, as
    # SQLAlchemy does for psycopg2: pysqlite would step once per row and let go of the GIL
    # each time, and the writer waited for it again behind busy request threads, holding the
    # write gate all the while.
    engine.dialect.use_insertmanyvalues_wo_returning = True

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


class _Write:
    """One caller's statement, and what its transaction raised, if it failed.

    `label` names a write queued without a waiter (`GroupCommit.submit`), for the log if it
    fails: nobody else will hear of it.
    """

    __slots__ = ("error", "label", "parameters", "statement")

    def __init__(
        self, statement: Executable, parameters: Mapping[str, Any], label: str | None = None
    ) -> None:
        self.statement = statement
        self.parameters = parameters
        self.label = label
        self.error: BaseException | None = None


class _Batch:
    """The writes that will share one transaction, and a pipe their callers wait on.

    The writer closes the pipe's write end once the transaction has ended, which wakes every
    caller at once, in the kernel, while the writer itself holds no GIL. Waking them one by
    one with thread locks cost a context switch each, with the GIL held: the rest of the
    process stood still meanwhile.

    `awaited` says somebody waits on it (`execute`, `flush`), so the writer commits it at
    once; a batch of queued writes only lingers until `due` for more to share it.
    """

    __slots__ = ("_read", "_write", "awaited", "due", "writes")

    def __init__(self) -> None:
        self.writes: list[_Write] = []
        self.awaited = False
        self.due = 0.0
        self._read, self._write = os.pipe()

    def wait(self, timeout: float) -> bool:
        """Wait for the end of the transaction (False if `timeout` passed first)."""
        poller = select.poll()
        poller.register(self._read, select.POLLIN)
        return bool(poller.poll(timeout * 1000))

    def finish(self) -> None:
        """Wake every caller of the batch."""
        descriptor, self._write = self._write, -1
        try:
            os.close(descriptor)
        except OSError:
            # Somebody else closed this number (a double close elsewhere in the process: once,
            # under wrk, in a gunicorn worker), which already woke the batch's callers. Dying
            # here would fail the writes queued behind it: two call rows were lost so.
            log.error("the group commit's wake-up pipe was closed by another", exc_info=True)

    def __del__(self, _close: Callable[[int], None] = os.close) -> None:
        # The last waiter is done with it (or a forked child dropped it); `_close` is bound
        # early, for a batch collected while the interpreter shuts down.
        for descriptor in (self._read, self._write):
            if descriptor >= 0:
                with contextlib.suppress(OSError):
                    _close(descriptor)


class GroupCommit:
    """Group commit: statements from many threads, committed together by one writer thread.

    `execute` returns only once a transaction holding the statement has committed, and raises
    what that transaction raised, so a caller sees exactly what its own transaction would have
    shown. Under load, the writes that arrive while one transaction commits share the next:
    one BEGIN, one executemany and one COMMIT for them all, one pass through the SQLite write
    gate (one lock hand-off between processes) and, on PostgreSQL, one flush of the log.
    A batch that fails is retried one write per transaction, so one bad write fails alone.
    Statements must be safe to run twice (an INSERT ... ON CONFLICT DO NOTHING is).

    `submit` is the write-behind: it queues the statement and returns at once. Only a write
    whose loss something else repairs belongs there (see `cases.intake.queue_call_record`).
    Its transaction starts within `linger_seconds`, sooner when a waiting write joins it; a
    failure is logged with the write's label. What is queued is committed by `flush`, by
    `close` and when the process exits; only a process killed outright loses it.

    `before_transaction`, if set, is called in the writer thread with the number of writes
    about to share a transaction (for tests and diagnostics; an exception it raises fails
    them like a database error would).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        linger_seconds: float = WRITE_BEHIND_LINGER_SECONDS,
        max_pending: int = WRITE_BEHIND_MAX_PENDING,
        before_transaction: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.linger_seconds = linger_seconds
        self.max_pending = max_pending
        self.before_transaction = before_transaction
        self._wake_read = self._wake_write = -1
        self._reset()
        _GROUP_COMMITS.add(self)

    def _reset(self) -> None:
        # Also in a forked child: the parent's writer thread, its lock and its waiters stay behind.
        for descriptor in (self._wake_read, self._wake_write):
            if descriptor >= 0:
                os.close(descriptor)
        self._lock = threading.Lock()
        self._pending = _Batch()
        self._writer: threading.Thread | None = None
        self._writer_idle = False  # waiting on the wake pipe for a write
        self._writer_lingering = False  # waiting on it, at most until the batch is due
        self._committing: _Batch | None = None  # the batch whose transaction is under way
        self._queued = 0  # writes submitted and not yet committed
        self._stopping = False
        # The idle writer waits on this pipe, so a caller wakes it without holding the GIL too.
        self._wake_read, self._wake_write = os.pipe()

    def execute(self, statement: Executable, parameters: Mapping[str, Any]) -> None:
        """Run the statement in a committed transaction; return once it has committed."""
        write = _Write(statement, parameters)
        with self._lock:
            batch = self._queue(write)
            batch.awaited = True
            wake, self._writer_idle = self._writer_idle, False
        if wake:
            os.write(self._wake_write, b"\0")
        self._wait(batch)
        if write.error is not None:
            raise write.error

    def submit(self, statement: Executable, parameters: Mapping[str, Any], *, label: str) -> None:
        """Queue the statement for a transaction soon, and return without waiting for it.

        With `max_pending` writes already queued, it waits like `execute` (and raises like it),
        so a database that falls behind slows its callers down.
        """
        with self._lock:
            if self._queued >= self.max_pending:
                backpressure = True
            else:
                backpressure = False
                self._queued += 1
                self._queue(_Write(statement, parameters, label))
                # A lingering writer is woken by its timeout, not by every write that joins.
                wake = self._writer_idle and not self._writer_lingering
                if wake:
                    self._writer_idle = False
        if backpressure:
            self.execute(statement, parameters)
        elif wake:
            os.write(self._wake_write, b"\0")

    def flush(self) -> None:
        """Return once every write queued so far has been committed (or has failed)."""
        with self._lock:
            # The pending batch is committed after the one under way, so waiting for it is
            # waiting for both; with none pending, only the one under way is left.
            batch = self._pending if self._pending.writes else self._committing
            if batch is None:
                return
            batch.awaited = True
            wake, self._writer_idle = self._writer_idle, False
        if wake:
            os.write(self._wake_write, b"\0")
        self._wait(batch)

    def _queue(self, write: _Write) -> _Batch:
        # Called with the lock held.
        if self._writer is None:
            self._writer = threading.Thread(target=self._run, name="group-commit", daemon=True)
            self._writer.start()
        batch = self._pending
        if not batch.writes:
            batch.due = time.monotonic() + self.linger_seconds
        batch.writes.append(write)
        return batch

    @property
    def queued(self) -> int:
        """Writes submitted and not yet committed (or failed)."""
        with self._lock:
            return self._queued

    @property
    def waiting(self) -> int:
        """Writes waiting for the next transaction (not counting one under way)."""
        with self._lock:
            return len(self._pending.writes)

    @property
    def running(self) -> bool:
        """Whether a writer thread is running (it stops at `close` once nothing is pending)."""
        with self._lock:
            return self._writer is not None

    @staticmethod
    def _wait(batch: _Batch) -> None:
        if not batch.wait(WRITE_TIMEOUT_SECONDS):
            raise TimeoutError("the group commit did not commit this write in time")

    def close(self) -> None:
        """Stop the writer once no write is pending (a later write starts another)."""
        with self._lock:
            writer = self._writer
            self._stopping = writer is not None
            wake, self._writer_idle = self._writer_idle, False
        if wake:
            os.write(self._wake_write, b"\0")
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout=WRITE_TIMEOUT_SECONDS)

    def _run(self) -> None:
        # One connection, kept: a pool checkout and return per batch (with PostgreSQL's
        # pre-ping round trip) cost about as much as the batch's own statements.
        connection: Connection | None = None
        try:
            while True:
                linger = 0.0
                with self._lock:
                    batch = self._pending
                    if batch.writes and not (batch.awaited or self._stopping):
                        linger = max(0.0, batch.due - time.monotonic())
                    if batch.writes and not linger:
                        self._pending, self._committing = _Batch(), batch
                    elif batch.writes:  # only queued writes: let more join them
                        self._writer_idle = self._writer_lingering = True
                    elif self._stopping:  # closed, nothing pending: the next write starts anew
                        self._writer, self._stopping, self._writer_idle = None, False, False
                        return
                    else:
                        self._writer_idle, self._writer_lingering = True, False
                if linger:
                    self._sleep(linger)
                elif not batch.writes:
                    os.read(self._wake_read, 64)  # until a caller (or close) writes a byte
                else:
                    connection = self._commit(batch, connection)
        except BaseException as error:
            # The writer is dying: fail what waits for it, and let the next write start another.
            with self._lock:
                if self._writer is threading.current_thread():
                    self._writer, self._stopping, self._writer_idle = None, False, False
                    self._writer_lingering = False
                stranded, self._pending = self._pending, _Batch()
            for write in stranded.writes:
                write.error = error
            self._settle_queued(stranded.writes)
            stranded.finish()
            raise
        finally:
            _discard(connection)

    def _sleep(self, seconds: float) -> None:
        """Linger until the batch is due, or until a waiting caller (or close) wakes us."""
        poller = select.poll()
        poller.register(self._wake_read, select.POLLIN)
        if poller.poll(seconds * 1000):
            os.read(self._wake_read, 64)
        with self._lock:
            self._writer_idle = self._writer_lingering = False

    def _commit(self, batch: _Batch, connection: Connection | None) -> Connection | None:
        """Commit the batch; return the connection to keep (None after a failure)."""
        writes = batch.writes
        try:
            try:
                connection = connection or self.engine.connect()
                self._transaction(connection, writes)
            except Exception as error:
                _discard(connection)
                connection = None
                if len(writes) == 1:
                    writes[0].error = error
                else:
                    for write in writes:  # find the culprit: each alone, in its own transaction
                        try:
                            with self.engine.connect() as single:
                                self._transaction(single, [write])
                        except Exception as single_error:
                            write.error = single_error
        except BaseException as error:  # the process is going down: fail, never strand, callers
            for write in writes:
                write.error = write.error or error
            raise
        finally:
            try:
                self._settle_queued(writes)  # before the wake-up: `flush` returns after the log
            finally:
                with self._lock:
                    self._committing = None
                batch.finish()
        return connection

    def _settle_queued(self, writes: list[_Write]) -> None:
        """Count the batch's queued writes off, and log those that failed: nobody waits on them."""
        queued = [write for write in writes if write.label is not None]
        if not queued:
            return
        with self._lock:
            self._queued -= len(queued)
        for write in queued:
            if write.error is not None:
                log.error("a queued write failed: %s", write.label, exc_info=write.error)

    def _transaction(self, connection: Connection, batch: list[_Write]) -> None:
        if self.before_transaction is not None:
            self.before_transaction(len(batch))
        with connection.begin():
            start = 0
            while start < len(batch):  # consecutive writes of one statement: one executemany
                statement, end = batch[start].statement, start + 1
                while end < len(batch) and batch[end].statement is statement:
                    end += 1
                connection.execute(statement, [write.parameters for write in batch[start:end]])
                start = end


_GROUP_COMMITS: weakref.WeakSet[GroupCommit] = weakref.WeakSet()


def _reset_group_commits_after_fork() -> None:
    for group_commit in list(_GROUP_COMMITS):
        group_commit._reset()


def _close_group_commits_at_exit() -> None:
    # A worker that exits (gunicorn's graceful stop, a max-requests restart, Ctrl-C) commits
    # what it queued first. Its writer is a daemon thread, still running while atexit runs.
    for group_commit in list(_GROUP_COMMITS):
        try:
            group_commit.close()
        except Exception:
            log.exception("could not commit the queued writes at exit")


os.register_at_fork(after_in_child=_reset_group_commits_after_fork)
atexit.register(_close_group_commits_at_exit)


def _discard(connection: Connection | None) -> None:
    """Close a connection a failure may have left unusable."""
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.close()


class Database:
    """An engine and its session factory; one per process and URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.group_commit = GroupCommit(self.engine)

    def session(self) -> Session:
        """A new session; the caller owns its transaction."""
        return self.sessions()

    def dispose(self) -> None:
        """Close pooled connections (after fork, or at the end of tests)."""
        self.group_commit.close()
        self.engine.dispose()
