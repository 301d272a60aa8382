"""Concurrent duplicates against a real threaded server (SQLite and PostgreSQL): the same
response sent many times at once is stored once, and rival answers to one trial store one."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from study.tables import Participant, Response

H = "X-Participant-Token"


@pytest.fixture
def base_url(app: Flask) -> Iterator[str]:
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(5)


def _post_many(base_url: str, token: str, bodies: list[dict]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(bodies))

    def send(body: dict) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=30) as c:
            barrier.wait()
            return c.post("/api/v1/participant/responses", json=body, headers={H: token})

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_simultaneous_duplicates_store_once(app: Flask, base_url: str, make_study) -> None:
    slug = make_study(task="realfake", n_main=3, n_practice=0, n_catch=0)
    with httpx.Client(base_url=base_url) as c:
        token = c.post(f"/api/v1/studies/{slug}/participants", json={"consent": True}).json()["token"]
        trial = c.get("/api/v1/participant/trial", headers={H: token}).json()["trial"]
    body = {"client_uuid": str(uuid.uuid4()), "trial_id": trial["id"], "answer": "real", "rt_ms": 400}
    answers = _post_many(base_url, token, [body] * 12)
    codes = Counter(r.status_code for r in answers)
    assert codes[201] == 1 and codes[200] == 11, codes
    assert len({r.json()["response_id"] for r in answers}) == 1

    # Rival answers (different UUIDs) to the next trial: exactly one is stored.
    with httpx.Client(base_url=base_url) as c:
        trial = c.get("/api/v1/participant/trial", headers={H: token}).json()["trial"]
    rivals = [{"client_uuid": str(uuid.uuid4()), "trial_id": trial["id"], "answer": "fake", "rt_ms": 300}
              for _ in range(12)]
    answers = _post_many(base_url, token, rivals)
    codes = Counter(r.status_code for r in answers)
    assert codes[201] == 1 and codes[409] == 11, codes
    assert all(r.json()["error"]["field"] == "trial_id" for r in answers if r.status_code == 409)

    with Session(app.extensions["sqlalchemy_engine"]) as s:
        p = s.scalar(select(Participant).where(Participant.token == token))
        assert p.current_index == 2
        n = s.scalar(select(func.count()).select_from(Response).where(Response.participant_id == p.id))
        assert n == 2


def test_simultaneous_starts_stay_balanced_and_do_not_overfill(app: Flask, base_url: str,
                                                               make_study, database_url: str) -> None:
    """Twelve starts at the same moment: the two conditions get six each, and a study with room
    for five takes exactly five (the study row is locked per start on PostgreSQL; SQLite
    serialises its writers)."""
    def start_many(slug: str, n: int) -> list[httpx.Response]:
        barrier = threading.Barrier(n)

        def go(_: int) -> httpx.Response:
            with httpx.Client(base_url=base_url, timeout=30) as c:
                barrier.wait()
                return c.post(f"/api/v1/studies/{slug}/participants", json={"consent": True})

        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(go, range(n)))

    balanced = start_many(make_study(task="realfake", n_main=2, n_practice=0, n_catch=0), 12)
    assert all(r.status_code == 201 for r in balanced), [r.status_code for r in balanced]
    if database_url.startswith("postgresql"):
        assert Counter(r.json()["condition"] for r in balanced) == {"A": 6, "B": 6}
    full = start_many(make_study(task="realfake", n_main=2, n_practice=0, n_catch=0,
                                 settings={"max_participants": 5}), 12)
    codes = Counter(r.status_code for r in full)
    if database_url.startswith("postgresql"):
        assert codes == {201: 5, 410: 7}, codes
    else:
        assert codes[201] >= 5 and codes[201] + codes[410] == 12, codes
