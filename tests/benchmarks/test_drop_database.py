"""Dropping a scratch PostgreSQL database as a role without superuser rights, while one of the
role's own sessions is still connected to it."""

import uuid

from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks.servers import drop_database
from study.db import make_engine


def test_drop_ends_the_roles_own_sessions_and_removes_the_database(postgres_url):
    name = f"dp_drop_{uuid.uuid4().hex[:8]}"
    admin = make_engine(postgres_url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        other = make_engine(make_url(postgres_url).set(database=name).render_as_string(hide_password=False))
        held = other.connect()  # a session that is still open when the database is dropped
        held.execute(text("SELECT 1"))
        drop_database(admin, name)
        with admin.connect() as conn:
            left = conn.execute(text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
        assert left == 0
        held.invalidate()  # its server side is gone
        other.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
