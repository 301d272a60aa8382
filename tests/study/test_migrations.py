"""The Alembic revision builds exactly the ORM's schema (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from study.db import make_engine
from study.migrate import upgrade
from study.tables import Base


def test_alembic_schema_equals_orm(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert set(Base.metadata.tables) <= tables and "alembic_version" in tables


def test_upgrade_is_idempotent(database_url: str) -> None:
    upgrade(database_url)  # already at head: nothing to do, no error


def test_compare_detects_a_missing_table(tmp_path: Path) -> None:
    """Guard against a comparison that can never fail: drop a table and the diff shows it."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE browser_events")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert any(d[0] == "add_table" and d[1].name == "browser_events" for d in diff)
