"""Served against a database that was never migrated, every request says to migrate (503), on
SQLite and PostgreSQL; once migrated, the same requests get their usual answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from study import create_app
from study.migrate import at_head, upgrade


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("pg_schema_url")


def test_an_unmigrated_database_answers_503_saying_to_migrate(empty_url: str, tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": empty_url, "TESTING": True, "PROPAGATE_EXCEPTIONS": False,
                      "SECRET_KEY": "k",
                      "STIMULI_ROOT": str(tmp_path / "stimuli"), "FEEDBACK_CLASSIFIER": None})
    client = app.test_client()
    engine = app.extensions["sqlalchemy_engine"]
    try:
        assert not at_head(engine)
        token = {"X-Participant-Token": "t" * 40}
        calls = [
            client.post("/api/v1/studies/demo/participants", json={"consent": True}),
            client.get("/api/v1/participant/trial", headers=token),
            client.post("/api/v1/participant/responses", headers=token, json={
                "client_uuid": "6f1c7c2e-3f4b-4a8e-9d2a-0b1c2d3e4f50", "trial_id": 1,
                "answer": "real", "rt_ms": 500}),
            client.post("/api/v1/participant/complete", headers=token),
        ]
        for res in calls:
            assert res.status_code == 503, res.get_data(as_text=True)
            assert "python -m study.migrate upgrade" in res.get_json()["error"]["message"]
        page = client.get("/s/demo")
        assert page.status_code == 503 and "migrate" in page.get_data(as_text=True)
        assert client.get("/healthz").status_code == 200  # no database work, no refusal

        upgrade(empty_url)
        assert at_head(engine)
        assert client.post("/api/v1/studies/demo/participants", json={"consent": True}).status_code == 404
        assert client.get("/api/v1/participant/trial", headers=token).status_code == 401
        assert client.get("/s/demo").status_code == 404
    finally:
        engine.dispose()
