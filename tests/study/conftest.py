"""Fixtures for the study platform's tests: databases (SQLite file, PostgreSQL schema), apps,
and small studies with real PNG stimuli written by Pillow."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from study import create_app
from study.migrate import upgrade
from study.models import Base, Condition, Stimulus, Study
from study.settings import StudySettings


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


def build_study(
    app: Flask,
    *,
    task: str = "realfake",
    n_main: int = 6,
    n_practice: int = 1,
    n_catch: int = 1,
    settings: dict[str, Any] | None = None,
    status: str = "live",
    conditions: tuple[str, ...] = ("A", "B"),
    code: str = "C0DE42",
    image_size: int = 8,
) -> str:
    slug = f"{task}-{uuid.uuid4().hex[:8]}"
    root = Path(app.config["STIMULI_ROOT"]) / slug
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(slug))
    base = {
        "trials_per_participant": n_main,
        "n_practice": n_practice,
        "n_catch": n_catch,
        "exposure_ms": 50,
        "fixation_ms": 50,
        "mask_ms": 50,
        "min_clicks": 2,
        "click_budget": 40,
    }
    base.update(settings or {})
    StudySettings.from_dict(base)  # fail early on a bad test setting
    engine = app.extensions["sqlalchemy_engine"]
    with Session(engine) as s:
        study = Study(slug=slug, title=f"Test {task}", task=task, status=status,
                      settings=base, completion_code=code)
        s.add(study)
        s.flush()
        for name in conditions:
            s.add(Condition(study_id=study.id, name=name))
        roles = ["main"] * n_main + ["practice"] * n_practice + ["catch"] * n_catch
        for i, role in enumerate(roles):
            pixels = (rng.random((image_size, image_size)) * 255).astype(np.uint8)
            rel = f"{slug}/s{i}.png"
            Image.fromarray(pixels, mode="L").save(root / f"s{i}.png")
            digest = hashlib.sha256((root / f"s{i}.png").read_bytes()).hexdigest()
            s.add(Stimulus(study_id=study.id, stimulus_key=f"s{i}", path=rel, sha256=digest,
                           source="model" if i % 2 else "real",
                           model_name="cfgdm" if i % 2 else None, class_label=f"digit{i % 3}",
                           width=image_size, height=image_size, role=role))
        s.commit()
    return slug
