"""Fixtures for the researcher side: an app per test on a temp SQLite file, a logged-in client,
and small stimulus manifests with real PNG files (helpers in researcher_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from researcher_helpers import EMAIL, PASSWORD, make_app, manifest_rows, write_manifest_csv

from study.auth import create_researcher


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    app.extensions["sqlalchemy_engine"].dispose()


@pytest.fixture
def researcher(app) -> int:
    from study import db

    with app.app_context():
        r = create_researcher(db.session(), EMAIL, PASSWORD)
        db.session().commit()
        return r.id


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def logged_in(app, client, researcher):
    with client.session_transaction() as sess:
        sess["researcher_id"] = researcher
    return client


@pytest.fixture
def stimuli_dir(tmp_path) -> Callable[..., Path]:
    """make(n_real, n_fake, ...) -> path of a manifest.csv next to its images."""

    def make(n_real: int = 3, n_fake: int = 3, **kw) -> Path:
        folder = tmp_path / "stimuli"
        return write_manifest_csv(folder, manifest_rows(folder, n_real, n_fake, **kw))

    return make
