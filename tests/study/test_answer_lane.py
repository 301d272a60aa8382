"""The answer lane (study/api/answer_lane.py) answers exactly as the Flask view does: the same
requests, sent to two copies of one database, one app with the lane and one without, get the
same status, headers and bytes, and the lane really serves the common case."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from study_helpers import build_study

from study import create_app
from study.migrate import upgrade

H = "X-Participant-Token"
PATH = "/api/v1/participant/responses"
LIMIT = 4096  # the apps' MAX_CONTENT_LENGTH, small enough to send a body over it


def _app(url: str, root: Path, lane: bool, testing: bool = True) -> Flask:
    return create_app({"DATABASE_URL": url, "TESTING": testing, "SECRET_KEY": "lane-test",
                       "STIMULI_ROOT": str(root), "FEEDBACK_CLASSIFIER": None,
                       "MAX_CONTENT_LENGTH": LIMIT, "ANSWER_LANE": lane})


@pytest.fixture
def started(tmp_path: Path) -> dict[str, Any]:
    """A SQLite database with a real-or-fake study (practice feedback on) and one participant
    whose first trial has been served: its token and trial ids in order."""
    url = f"sqlite:///{tmp_path / 'base.db'}"
    upgrade(url)
    app = _app(url, tmp_path / "stimuli", lane=False)
    slug = build_study(app, n_main=3, n_practice=1, n_catch=0,
                       settings={"practice_feedback": True})
    client = app.test_client()
    token = client.post(f"/api/v1/studies/{slug}/participants", json={"consent": True}).get_json()["token"]
    assert client.get("/api/v1/participant/trial", headers={H: token}).status_code == 200
    with app.extensions["sqlalchemy_engine"].connect() as conn:
        trial_ids = conn.execute(text(
            'SELECT t.id FROM trials t JOIN participants p ON p.id = t.participant_id '
            'WHERE p.token = :t ORDER BY t."index"'), {"t": token}).scalars().all()
    app.extensions["sqlalchemy_engine"].dispose()
    return {"path": tmp_path / "base.db", "root": tmp_path / "stimuli", "token": token,
            "trials": trial_ids}


def _copy(src: Path, dst: Path) -> str:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return f"sqlite:///{dst}"


def _answer(trial_id: int, client_uuid: str, **over: Any) -> dict[str, Any]:
    return {"client_uuid": client_uuid, "trial_id": trial_id, "answer": "fake", "rt_ms": 640.5,
            "exposure_ms": 51.2, **over}


def _script(token: str, trials: list[int]) -> list[dict[str, Any]]:
    """(method, headers, body bytes) of each request, in order; the comment says who answers it
    with the lane on."""
    u1, u2, u3 = (str(uuid.uuid4()) for _ in range(3))
    js = "application/json"

    def req(body: Any, token_: str | None = token, ctype: str = js, method: str = "POST",
            raw: bytes | None = None) -> dict[str, Any]:
        headers = {"Content-Type": ctype}
        if token_ is not None:
            headers[H] = token_
        data = raw if raw is not None else json.dumps(body).encode()
        return {"method": method, "headers": headers, "data": data}

    return [
        req(_answer(trials[0], u1)),  # lane: stored, 201 with the practice feedback
        req(_answer(trials[0], u1)),  # lane: the resend's stored result, 200
        req(_answer(trials[0], u2)),  # lane -> app's handler: 409 already answered
        req(_answer(trials[2], u2)),  # lane -> handler: 409 not the current trial
        req(_answer(10**6, u2)),  # lane -> handler: 404 not this participant's trial
        req(None, raw=b'{"client_uuid": '),  # lane -> handler: 400 bad JSON
        req([1, 2]),  # lane -> handler: 400 not an object
        req({"client_uuid": u2}),  # lane -> handler: 400 trial_id missing
        req(_answer(trials[1], "not-a-uuid")),  # lane -> handler: 400 client_uuid
        req(_answer(trials[1], u2, answer="maybe")),  # lane -> handler: 400 answer
        req(_answer(trials[1], u2), token_="no-such-token"),  # lane -> handler: 401
        req(_answer(trials[1], u2), token_=None),  # Flask: 401 no token
        req(_answer(trials[1], u2), ctype="text/plain"),  # Flask: 415
        req(None, raw=b"{" + b" " * LIMIT + b"}"),  # Flask: 413
        req(None, raw=b""),  # Flask (empty body): 400
        req(None, method="GET", raw=b""),  # Flask: 405
        req(_answer(trials[1], u2), ctype="application/json; charset=utf-8"),  # lane: 201
        req(_answer(trials[2], u3)),  # lane: 201
    ]


def _replies(app: Flask, script: list[dict[str, Any]]) -> list[tuple[int, list, bytes]]:
    client = app.test_client(use_cookies=False)
    out = []
    for r in script:
        res = client.open(PATH, method=r["method"], headers=r["headers"], data=r["data"])
        out.append((res.status_code, sorted(res.headers.items()), res.get_data()))
    return out


def _count_view_calls(app: Flask) -> list[int]:
    calls = [0]
    view = app.view_functions["api.post_response"]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return view(*args, **kwargs)

    app.view_functions["api.post_response"] = counted
    return calls


def test_the_lane_answers_byte_for_byte_as_the_flask_view(started: dict[str, Any], tmp_path: Path) -> None:
    script = _script(started["token"], started["trials"])
    replies, view_calls = {}, {}
    for lane in (True, False):
        app = _app(_copy(started["path"], tmp_path / f"lane{lane}.db"), started["root"], lane)
        view_calls[lane] = _count_view_calls(app)
        replies[lane] = _replies(app, script)
        app.extensions["sqlalchemy_engine"].dispose()
    statuses = [status for status, _, _ in replies[False]]
    assert statuses == [201, 200, 409, 409, 404, 400, 400, 400, 400, 400, 401, 401, 415, 413,
                        400, 405, 201, 201]
    for i, (with_lane, without) in enumerate(zip(replies[True], replies[False], strict=True)):
        assert with_lane == without, (i, script[i])
    first = json.loads(replies[True][0][2])
    assert first["next_index"] == 1 and set(first["feedback"]) == {"truth"}
    # Without the lane every POST but the 413 (refused before routing) reaches the view; with
    # it, only those it leaves to Flask: no token, another content type, an empty body.
    assert view_calls[False][0] == 16
    assert view_calls[True][0] == 3


def test_the_lane_stores_what_the_view_stores(started: dict[str, Any], tmp_path: Path) -> None:
    script = _script(started["token"], started["trials"])
    rows = {}
    for lane in (True, False):
        url = _copy(started["path"], tmp_path / f"rows{lane}.db")
        app = _app(url, started["root"], lane)
        _replies(app, script)
        app.extensions["sqlalchemy_engine"].dispose()
        engine = create_engine(url)
        with engine.connect() as conn:
            rows[lane] = [
                conn.execute(text("SELECT trial_id, client_uuid, answer, correct, feedback, rt_ms, "
                                  "exposure_ms FROM responses ORDER BY id")).all(),
                conn.execute(text("SELECT current_index, last_seen_at IS NOT NULL FROM participants")).all(),
            ]
        engine.dispose()
    assert len(rows[True][0]) == 3
    assert rows[True] == rows[False]


def test_an_unreachable_database_is_a_503_with_retry_after_through_the_lane(tmp_path: Path) -> None:
    """Outside testing (no exception propagation), the lane's failure is answered by the app's
    outage handler, as the view's is: 503, Retry-After, the JSON error, the security headers."""
    url = "postgresql://nobody:x@127.0.0.1:9/none?connect_timeout=2"
    body = json.dumps(_answer(1, str(uuid.uuid4()))).encode()
    replies = []
    for lane in (True, False):
        app = _app(url, tmp_path, lane, testing=False)
        res = app.test_client(use_cookies=False).post(
            PATH, data=body, headers={H: "tok", "Content-Type": "application/json"})
        replies.append((res.status_code, sorted(res.headers.items()), res.get_data()))
    assert replies[0] == replies[1]
    status, headers, data = replies[0]
    assert status == 503 and dict(headers)["Retry-After"] == "2"
    assert dict(headers)["Content-Security-Policy"].startswith("default-src 'self'")
    assert "retry" in json.loads(data)["error"]["message"]


def test_the_answer_path_has_autocommit_connections_disposed_with_the_app_engine(app: Flask, make_study) -> None:
    """PostgreSQL: answers use their own pool of autocommit connections (no per-request switch),
    emptied when the app's engine is disposed (tests, a backup restore); SQLite: the app's engine."""
    engine, answers = app.extensions["sqlalchemy_engine"], app.extensions["sqlalchemy_answer_engine"]
    slug = make_study(n_main=2, n_practice=0, n_catch=0)
    client = app.test_client(use_cookies=False)
    token = client.post(f"/api/v1/studies/{slug}/participants", json={"consent": True}).get_json()["token"]
    trial = client.get("/api/v1/participant/trial", headers={H: token}).get_json()["trial"]
    res = client.post(PATH, json=_answer(trial["id"], str(uuid.uuid4())), headers={H: token})
    assert res.status_code == 201, res.get_json()
    if engine.dialect.name == "sqlite":
        assert answers is engine
        return
    assert answers is not engine and answers.pool.checkedin() == 1
    with answers.connect() as conn:
        assert conn.connection.dbapi_connection.autocommit is True
        assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == "read committed"
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection.autocommit is False
    engine.dispose()
    assert answers.pool.checkedin() == 0


def test_debug_mode_leaves_answers_to_flask(started: dict[str, Any], tmp_path: Path) -> None:
    """In debug mode every answer goes through Flask (its debugger, its indented JSON)."""
    app = _app(_copy(started["path"], tmp_path / "debug.db"), started["root"], lane=True)
    app.config["DEBUG"] = True
    calls = _count_view_calls(app)
    res = app.test_client(use_cookies=False).post(
        PATH, json=_answer(started["trials"][0], str(uuid.uuid4())), headers={H: started["token"]})
    assert res.status_code == 201 and calls[0] == 1
    assert res.get_data().startswith(b"{\n  ")  # Flask's debug-mode JSON
    app.extensions["sqlalchemy_engine"].dispose()
