"""Helpers for the researcher tests: apps on temp SQLite files, manifests with real PNGs, rows."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import random
from pathlib import Path

from PIL import Image
from sqlalchemy import create_engine

from study import create_app
from study.tables import Base

PASSWORD = "correct horse battery"
EMAIL = "ada@example.org"
MANIFEST_COLUMNS = [
    "stimulus_id", "path", "sha256", "source", "model", "class_label", "class_text", "exemplar_id", "guidance",
    "sampler", "steps", "seed", "checkpoint", "dataset", "split", "role", "width", "height",
]


def make_app(tmp_path: Path, database_url: str | None = None, **overrides):
    url = database_url or f"sqlite:///{tmp_path / 'study.db'}"
    if url.startswith("sqlite"):
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
    config = {
        "TESTING": True,
        "DATABASE_URL": url,
        "SECRET_KEY": "test-secret-key",
        "STIMULI_ROOT": str(tmp_path / "store"),
        "WTF_CSRF_ENABLED": False,
    }
    config.update(overrides)
    app = create_app(config)
    return app


def write_png(path: Path, seed: int, size: tuple[int, int] = (8, 8)) -> str:
    """A small ink-on-black PNG; returns its sha256."""
    rng = random.Random(seed)
    img = Image.new("L", size, 0)
    img.putdata([255 if rng.random() < 0.3 else 0 for _ in range(size[0] * size[1])])
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_rows(folder: Path, n_real: int = 3, n_fake: int = 3, catch: int = 0, practice: int = 0) -> list[dict]:
    rows = []
    specs = [("real", "main")] * n_real + [("model", "main")] * n_fake
    specs += [("real", "catch")] * catch + [("real", "practice")] * practice
    for i, (source, role) in enumerate(specs):
        rel = f"img/s{i:03d}.png"
        sha = write_png(folder / rel, seed=i)
        rows.append({
            "stimulus_id": f"{'cfgdm' if source == 'model' else 'real'}-c{i % 2}-s{i}",
            "path": rel, "sha256": sha, "source": source,
            "model": "cfgdm" if source == "model" else "",
            "class_label": f"digit{i % 2}", "class_text": f"the digit {i % 2}", "exemplar_id": "real-c0-s0" if source == "model" else "",
            "guidance": "1.5" if source == "model" else "", "sampler": "ddim" if source == "model" else "",
            "steps": "50" if source == "model" else "", "seed": str(100 + i) if source == "model" else "",
            "checkpoint": "", "dataset": "digits", "split": "heldout", "role": role,
            "width": "8", "height": "8",
        })
    return rows


def write_manifest_csv(folder: Path, rows: list[dict], name: str = "manifest.csv",
                       columns: list[str] | None = None) -> Path:
    path = folder / name
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns or MANIFEST_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_manifest_json(folder: Path, rows: list[dict]) -> Path:
    path = folder / "manifest.json"
    path.write_text(json.dumps({"version": 1, "created": "2026-01-01T00:00:00Z", "generator": {}, "stimuli": rows}))
    return path


def create_demo_study(app, manifest_path: Path, slug: str = "demo", task: str = "realfake", **definition):
    """A study created through study.manifest (what the CLI and the dashboard do)."""
    from study import db, manifest

    with app.app_context():
        raw = {"task": task, "n_practice": 0, "n_catch": 0, **definition}
        study = manifest.create_study(
            db.session(), manifest.read_manifest(manifest_path), manifest_path.parent,
            manifest.parse_definition(raw), app.config["STIMULI_ROOT"], slug=slug, live=True,
        )
        return study.id


def populate(app, study_id: int, n_participants: int, trials_each: int, *, clicks_each: int = 0,
             events_each: int = 0, seed: int = 0) -> dict:
    """Insert participants with answered trials (and clicks, events) directly with the ORM.

    Returns what was inserted, for the tests to check exports and progress against."""
    import datetime as dt

    from sqlalchemy import select

    from study import db
    from study.tables import BrowserEvent, Click, Condition, Participant, Response, Stimulus, Trial

    rng = random.Random(seed)
    inserted = {"responses": [], "clicks": 0, "events": 0, "participants": []}
    with app.app_context():
        s = db.session()
        stimuli = s.scalars(select(Stimulus).where(Stimulus.study_id == study_id).order_by(Stimulus.id)).all()
        condition = s.scalar(select(Condition).where(Condition.study_id == study_id))
        statuses = ["completed", "started", "returned", "screened_out"]
        for p in range(n_participants):
            part = Participant(
                study_id=study_id, token=f"tok-{study_id}-{p}-{seed}", public_id=f"pub-{study_id}-{p}-{seed}",
                platform="prolific", external_id=f"PID{p:04d}-{seed}", status=statuses[p % 4],
                condition_id=condition.id if condition else None, seed=p, current_index=trials_each,
            )
            s.add(part)
            s.flush()
            inserted["participants"].append(part.external_id)
            for t in range(trials_each):
                stim = stimuli[(p + t) % len(stimuli)]
                kind = "catch" if t % 5 == 4 else "main"
                trial = Trial(participant_id=part.id, index=t, stimulus_id=stim.id, kind=kind, exposure_ms=500.0)
                s.add(trial)
                s.flush()
                answer = rng.choice(["real", "fake"])
                correct = (answer == "fake") == (stim.source == "model")
                rt = round(rng.uniform(200, 2000), 3)
                resp = Response(
                    trial_id=trial.id, participant_id=part.id, client_uuid=f"{study_id:04d}{p:06d}{t:06d}-uuid-{seed}",
                    answer=answer, correct=correct, confidence=rng.randint(1, 4), rt_ms=rt,
                    exposure_ms=500.0, n_clicks=clicks_each,
                    received_at=dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC),
                )
                s.add(resp)
                s.flush()
                for k in range(clicks_each):
                    s.add(Click(response_id=resp.id, order=k, x=rng.random(), y=rng.random(), t_ms=50.0 * k, stroke=k // 3))
                inserted["clicks"] += clicks_each
                inserted["responses"].append({"participant": part.external_id, "trial_index": t, "kind": kind,
                                              "stimulus_id": stim.stimulus_key, "answer": answer,
                                              "correct": correct, "rt_ms": rt, "status": part.status})
            for e in range(events_each):
                s.add(BrowserEvent(participant_id=part.id, kind="blur", t_ms=10.0 * e, detail={"n": e}))
            inserted["events"] += events_each
        s.commit()
    return inserted


@contextlib.contextmanager
def fresh_postgres_database(server_url: str):
    """A new, empty database on the server of `server_url`, upgraded with the project's Alembic
    migrations, dropped afterwards; yields its URL."""
    import uuid

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from benchmarks.servers import drop_database
    from study import migrate
    from study.db import make_engine

    name = f"dp_h2_{uuid.uuid4().hex[:10]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop_database(admin, name)
        admin.dispose()
