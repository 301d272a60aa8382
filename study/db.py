"""Engine and per-request sessions (plain SQLAlchemy 2.x, no global state at import time)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
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
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    # One pooled connection per gunicorn thread: overflow connections are opened and closed
    # per request, which the load profile showed costing ~30% of worker time. No pre-ping (a
    # round trip per request): after a PostgreSQL restart a stale connection fails its request
    # once with 503 + Retry-After (study/errors.py), is dropped from the pool, and the client's
    # retry stores the response (tests/hardening/test_load_faults.py).
    kwargs.setdefault("pool_size", pool_size)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"], pool_size=app.config["DATABASE_POOL_SIZE"])
    app.extensions["sqlalchemy_engine"] = engine
    app.extensions["sqlalchemy_sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    return current_app.extensions["sqlalchemy_engine"]


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
