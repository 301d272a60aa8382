"""Fixtures for the study platform's tests: databases (SQLite file, PostgreSQL schema), apps,
and small studies with real PNG stimuli written by Pillow."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from study_helpers import build_study

from study import create_app
from study.migrate import upgrade
from study.tables import Base


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
        upgrade(url)
        return url
    url = request.getfixturevalue("pg_schema_url")
    upgrade(url)  # once per module's schema; later calls find it at head
    engine = create_engine(url)
    with engine.begin() as conn:  # every test starts from empty tables
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """A study app on the parametrised database, stimuli under tmp_path/stimuli."""
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "STIMULI_ROOT": str(tmp_path / "stimuli"),
            "FEEDBACK_CLASSIFIER": None,
        }
    )
    yield app
    app.extensions["sqlalchemy_engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_study(app: Flask) -> Callable[..., str]:
    """Insert a study with real PNG stimuli (written by Pillow) and return its slug."""
    return lambda **kw: build_study(app, **kw)
