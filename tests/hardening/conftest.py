"""Fixtures for the hardening tests: an app on a temp SQLite file with a live ClickMe and a live
real-or-fake study (made through study.manifest, as the CLI makes them), participants, a
researcher, and a private PostgreSQL cluster for the restart fault."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the harness lives in benchmarks/, which is not installed
    sys.path.insert(0, str(ROOT))

from hardening_helpers import EMAIL, PASSWORD, SECRET  # noqa: E402

from benchmarks.servers import make_study  # noqa: E402
from study import create_app  # noqa: E402
from study.migrate import upgrade  # noqa: E402


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def app(work: Path) -> Iterator[Flask]:
    """A study app on a fresh SQLite file with two live studies: `clickme` and `realfake`."""
    url = f"sqlite:///{work / 'study.db'}"
    upgrade(url)
    make_study(url, work, trials=4, task="clickme", slug="clickme")
    make_study(url, work, trials=4, task="realfake", slug="realfake")
    # TESTING stays off: an unhandled error must show as the 500 a participant would get.
    app = create_app({"DATABASE_URL": url, "TESTING": False, "SECRET_KEY": SECRET,
                      "STIMULI_ROOT": str(work / "store"), "FEEDBACK_CLASSIFIER": None})
    yield app
    app.extensions["sqlalchemy_engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def start(client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """start(slug, pid=None) -> the start call's JSON (token, participant_id, ...)."""
    counter = iter(range(10**6))

    def go(slug: str = "clickme", pid: str | None = None) -> dict[str, Any]:
        pid = pid or f"P{next(counter):05d}"
        res = client.post(f"/api/v1/studies/{slug}/participants",
                          json={"platform": "prolific", "PROLIFIC_PID": pid, "STUDY_ID": "x",
                                "SESSION_ID": "y", "consent": True})
        assert res.status_code == 201, res.get_data(as_text=True)
        return res.get_json()

    return go


@pytest.fixture
def researcher_id(app: Flask) -> int:
    from study import auth, db

    with app.app_context():
        r = auth.create_researcher(db.session(), EMAIL, PASSWORD)
        db.session().commit()
        return r.id


@pytest.fixture
def logged_in(app: Flask, researcher_id: int) -> FlaskClient:
    c = app.test_client()
    with c.session_transaction() as sess:
        sess["researcher_id"] = researcher_id
    return c


def pg_skip_reason() -> str | None:
    from benchmarks.servers import why_no_pg_cluster

    return why_no_pg_cluster()


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[Any]:
    """A private PostgreSQL cluster this test may restart; skipped, saying why, when this
    machine cannot create one (not root, or Debian's postgresql-common missing)."""
    from benchmarks.servers import PgCluster

    why = pg_skip_reason()
    if why:
        pytest.skip(f"cannot control a PostgreSQL server here: {why}")
    with PgCluster() as cluster:
        yield cluster
