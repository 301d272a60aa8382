"""Secrets never reach the logs: a live server (each one the app ships with) with access and debug
logging serves logins (right and wrong passwords), participants, bad requests and exports;
afterwards its whole log is searched for the SECRET_KEY, the passwords, the participant tokens
and the session cookies."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from benchmarks.servers import AppServer, make_study, server_env
from study.serving import SERVERS

SECRET_KEY = "sk-" + uuid.uuid4().hex + uuid.uuid4().hex
PASSWORD = "pw-" + uuid.uuid4().hex
WRONG = "wrong-" + uuid.uuid4().hex
EMAIL = "ada@example.org"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert match, "no csrf_token in the login form"
    return match.group(1)


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
def test_no_secret_in_the_server_log(tmp_path: Path, server: str) -> None:
    from sqlalchemy.orm import Session

    from study import auth
    from study.db import make_engine

    url = f"sqlite:///{tmp_path / 'study.db'}"
    make_study(url, tmp_path, trials=3, task="realfake", slug="logs")
    engine = make_engine(url)
    with Session(engine) as s:
        auth.create_researcher(s, EMAIL, PASSWORD)
        s.commit()
    engine.dispose()
    env = server_env(url, tmp_path, SECRET_KEY=SECRET_KEY)
    log = tmp_path / "server.log"
    secrets_seen: list[str] = [SECRET_KEY, PASSWORD, WRONG]
    with AppServer(env, 2, 4, log, server=server, access_log=True, log_level="debug") as served:
        base = f"http://127.0.0.1:{served.port}"
        with httpx.Client(base_url=base, timeout=30) as web:
            for password in (WRONG, PASSWORD):
                token = _csrf(web.get("/researcher/login").text)
                web.post("/researcher/login", data={"csrf_token": token, "email": EMAIL, "password": password})
            assert web.get("/researcher/").status_code == 200  # logged in
            secrets_seen += [c.value for c in web.cookies.jar]
            assert web.get("/researcher/studies/logs/export/trials.csv").status_code == 200
        for i in range(3):
            with httpx.Client(base_url=base, timeout=30) as p:
                res = p.post("/api/v1/studies/logs/participants",
                             json={"platform": "prolific", "PROLIFIC_PID": f"LOGPID{i}", "consent": True})
                token = res.json()["token"]
                secrets_seen.append(token)
                secrets_seen += [c.value for c in p.cookies.jar]
                h = {"X-Participant-Token": token}
                for _ in range(3):
                    trial = p.get("/api/v1/participant/trial", headers=h).json()["trial"]
                    body = {"client_uuid": str(uuid.uuid4()), "trial_id": trial["id"], "answer": "real", "rt_ms": 400}
                    assert p.post("/api/v1/participant/responses", json=body, headers=h).status_code == 201
                # Bad requests too: errors are where request details tend to get logged.
                p.post("/api/v1/participant/responses", content=b"[" * 50_000, headers={**h, "Content-Type": "application/json"})
                p.post("/api/v1/participant/responses", json={"trial_id": -1}, headers=h)
                p.get("/api/v1/participant/trial", headers={"X-Participant-Token": token + "x"})
                assert p.post("/api/v1/participant/complete", json={}, headers=h).status_code == 200
    text = log.read_text()
    assert "GET /api/v1/participant/trial" in text  # the access log was on
    leaked = [s[:12] + "..." for s in secrets_seen if s and s in text]
    assert leaked == [], f"secrets found in the server log: {leaked}"


def test_a_database_error_does_not_log_the_token(app, start, caplog: pytest.LogCaptureFixture) -> None:
    """When the database fails mid-request (a restart, a lock held too long), the error logged
    must not carry the statement's parameters, which include the participant's token."""
    import sqlite3

    from sqlalchemy import event

    token = start("clickme")["token"]
    engine = app.extensions["sqlalchemy_engine"]

    def fail(conn, cursor, statement, parameters, context, executemany):
        if token in str(parameters):
            raise sqlite3.OperationalError("database is locked")

    event.listen(engine, "before_cursor_execute", fail)
    try:
        with caplog.at_level("DEBUG"):
            res = app.test_client().get("/api/v1/participant/trial", headers={"X-Participant-Token": token})
    finally:
        event.remove(engine, "before_cursor_execute", fail)
    assert res.status_code >= 500 and token not in res.get_data(as_text=True)
    assert "database is locked" in caplog.text  # the failure itself was logged
    assert token not in caplog.text, "the participant token was written to the log"
