"""Engine and per-request sessions (plain SQLAlchemy 2.x, no global state at import time)."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, pool_size: int = 40, **kwargs) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout on every connection.

    `pool_size` should be at least the number of threads per worker. Statement
    parameters are kept out of exception messages (hide_parameters): they hold participant
    tokens, and a failed statement's exception is logged.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        if ":memory:" not in url and url.rstrip("/") != "sqlite:":
            # A file database: one pooled connection per thread, as for PostgreSQL (the default
            # pool of 5 made gunicorn's 32 threads queue for connections under load).
            kwargs.setdefault("pool_size", pool_size)
            kwargs.setdefault("max_overflow", 10)
            database = make_url(url).database
            if database and not database.startswith("file:"):  # its folder is made on first use
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    # One pooled connection per server thread: overflow connections are opened and closed
    # per request, which the load profile showed costing ~30% of worker time. No pre-ping (a
    # round trip per request): after a PostgreSQL restart a stale connection fails its request
    # once with 503 + Retry-After (study/errors.py), is dropped from the pool, and the client's
    # retry stores the response (tests/hardening/test_load_faults.py).
    kwargs.setdefault("pool_size", pool_size)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


class SqliteWriteLock:
    """Queues one SQLite database's write transactions: a thread lock inside the process, then
    an exclusive flock on `DATABASE.writelock` across processes (the server's workers).

    SQLite allows one writer at a time; a writer that finds the database locked sleeps in its
    busy handler (1, 2, 5, ... 100 ms) before trying again, so under load most of a response's
    latency was sleeping while the lock was already free. Blocked here, a writer is woken the
    moment the lock is released. A forked child (gunicorn --preload) starts with a fresh thread
    lock and opens its own lock file, since a lock on an inherited descriptor would be shared
    with the parent.
    """

    def __init__(self, database: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._path = Path(database + ".writelock") if database and database != ":memory:" else None
        self._fd: int | None = None
        _all_write_locks.add(self)

    def _after_fork(self) -> None:
        self._thread_lock = threading.Lock()
        self._fd = None  # the parent's descriptor stays open (and harmless) in the child

    def _file(self) -> int | None:
        if self._path is None or fcntl is None:
            return None
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def __enter__(self) -> SqliteWriteLock:
        self._thread_lock.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


try:
    import fcntl
except ImportError:  # not on Windows: the thread lock alone, SQLite's busy handler across processes
    fcntl = None  # type: ignore[assignment]

_all_write_locks: weakref.WeakSet[SqliteWriteLock] = weakref.WeakSet()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: [lock._after_fork() for lock in list(_all_write_locks)])

_write_locks: dict[str, SqliteWriteLock] = {}
_write_locks_guard = threading.Lock()


def sqlite_write_lock(engine: Engine) -> SqliteWriteLock:
    """The write lock of `engine`'s SQLite database (one per database file and process)."""
    key = str(engine.url)
    lock = _write_locks.get(key)
    if lock is None:
        with _write_locks_guard:
            lock = _write_locks.setdefault(key, SqliteWriteLock(engine.url.database))
    return lock


def init_app(app: Flask) -> None:
    url, pool_size = app.config["DATABASE_URL"], app.config["DATABASE_POOL_SIZE"]
    engine = make_engine(url, pool_size=pool_size)
    app.extensions["sqlalchemy_engine"] = engine
    app.extensions["sqlalchemy_answer_engine"] = _answer_engine(engine, url, pool_size)
    app.extensions["sqlalchemy_sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def _answer_engine(engine: Engine, url: str, pool_size: int) -> Engine:
    """The engine of the answer path (study/response_store.py). On PostgreSQL its own pool of
    autocommit connections: each statement is its own transaction, and no connection is switched
    to autocommit and back (nor rolled back) on every checkout, which was a quarter of an answer's
    CPU. It is disposed with `engine`. On SQLite, `engine` itself (`store` opens its own
    transaction)."""
    if engine.dialect.name != "postgresql":
        return engine
    answers = make_engine(url, pool_size=pool_size, isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
    event.listen(engine, "engine_disposed", lambda _engine: answers.dispose())
    return answers


def engine() -> Engine:
    return current_app.extensions["sqlalchemy_engine"]


def answer_engine() -> Engine:
    """The engine of the answer path: autocommit connections on PostgreSQL (`_answer_engine`)."""
    return current_app.extensions["sqlalchemy_answer_engine"]


def session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["sqlalchemy_sessionmaker"]()
    return g.db_session


@contextmanager
def transaction() -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error."""
    s = session()
    try:
        yield s
        s.commit()
    except BaseException:
        s.rollback()
        raise


def _close_session(_exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()
