"""Fixtures for the study platform's tests: databases (SQLite file, PostgreSQL schema), apps,
and small studies with real PNG stimuli written by Pillow."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from study.migrate import upgrade


def _psycopg_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@pytest.fixture(scope="module")
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections live in a fresh PostgreSQL schema, dropped after the module."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_psycopg_url(postgres_url))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in postgres_url else "?"
    yield f"{_psycopg_url(postgres_url)}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database at Alembic head: a temp SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'study.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
    upgrade(url)
    return url
