"""Helpers for the Prolific tests: an app on a migrated SQLite file, a small study, and
participants run through the JSON API."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from study import create_app
from study.migrate import upgrade
from study.tables import Condition, Participant, Stimulus, Study, Trial

TOKEN = "stand-in-token-0123"
H = "X-Participant-Token"


def make_app(tmp_path: Path, database_url: str | None = None, **config: Any) -> Flask:
    url = database_url or f"sqlite:///{tmp_path / 'study.db'}"
    upgrade(url)  # the migrations, 0006 included, build the tables
    return create_app({
        "TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret-key",
        "STIMULI_ROOT": str(tmp_path / "stimuli"), "WTF_CSRF_ENABLED": False, **config,
    })


def make_study(app: Flask, *, n_main: int = 3, n_catch: int = 2, settings: dict | None = None,
               slug: str = "rf", code: str = "DONE01", screened_out_code: str | None = "OUT01") -> int:
    """A live real-or-fake study; main stimuli alternate real/model, catch stimuli are real."""
    root = Path(app.config["STIMULI_ROOT"]) / slug
    root.mkdir(parents=True, exist_ok=True)
    base = {"trials_per_participant": n_main, "n_practice": 0, "n_catch": n_catch,
            "exposure_ms": 50, **(settings or {})}
    rng = np.random.default_rng(0)
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        study = Study(slug=slug, title="Prolific test", task="realfake", status="live", settings=base,
                      completion_code=code, screened_out_code=screened_out_code)
        s.add(study)
        s.flush()
        s.add(Condition(study_id=study.id, name="A"))
        roles = ["main"] * n_main + ["catch"] * n_catch
        for i, role in enumerate(roles):
            path = root / f"s{i}.png"
            Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8), mode="L").save(path)
            s.add(Stimulus(study_id=study.id, stimulus_key=f"s{i}", path=f"{slug}/s{i}.png",
                           sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                           source="model" if role == "main" and i % 2 else "real",
                           model_name="cfgdm" if role == "main" and i % 2 else None,
                           class_label="digit1", class_text="the digit 1", width=8, height=8, role=role))
        s.commit()
        return study.id


def start(client: FlaskClient, slug: str, pid: str, session_id: str) -> str:
    res = client.post(f"/api/v1/studies/{slug}/participants", json={
        "consent": True, "platform": "prolific", "PROLIFIC_PID": pid, "STUDY_ID": "st1",
        "SESSION_ID": session_id})
    assert res.status_code == 201, res.get_json()
    return res.get_json()["token"]


def answer(client: FlaskClient, app: Flask, token: str, n: int | None = None,
           catch_wrong: bool = False) -> int:
    """Answer `n` trials (all when None), each right, or catch trials wrong when `catch_wrong`;
    the number answered."""
    done = 0
    while n is None or done < n:
        cur = client.get("/api/v1/participant/trial", headers={H: token}).get_json()
        if cur.get("done"):
            break
        trial = cur["trial"]
        with Session(app.extensions["sqlalchemy_engine"]) as s:
            source = s.scalar(select(Stimulus.source).join(Trial, Trial.stimulus_id == Stimulus.id)
                              .where(Trial.id == trial["id"]))
        right = "fake" if source == "model" else "real"
        wrong = "real" if right == "fake" else "fake"
        body = {"client_uuid": str(uuid.uuid4()), "trial_id": trial["id"], "rt_ms": 500,
                "answer": wrong if catch_wrong and trial["kind"] == "catch" else right}
        res = client.post("/api/v1/participant/responses", json=body, headers={H: token})
        assert res.status_code == 201, res.get_json()
        done += 1
    return done


def complete(client: FlaskClient, token: str) -> dict:
    res = client.post("/api/v1/participant/complete", json={}, headers={H: token})
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def status_of(app: Flask, pid: str) -> str:
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        return s.scalar(select(Participant.status).where(Participant.external_id == pid))


@contextlib.contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    """A URL whose connections live in a fresh PostgreSQL schema, dropped afterwards."""
    schema = f"p_{uuid.uuid4().hex[:12]}"
    url = server_url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
