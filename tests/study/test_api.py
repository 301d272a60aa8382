"""The participant API end to end with the Flask test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from study.assignment import StimulusRef, build_trial_plan
from study.settings import StudySettings
from study.tables import BrowserEvent, Click, Participant, Response, Stimulus, Study, Trial

H = "X-Participant-Token"


def start(client: FlaskClient, slug: str, pid: str | None = None, **extra: Any) -> dict:
    body: dict[str, Any] = {"consent": True, **extra}
    if pid is not None:
        body.update(platform="prolific", PROLIFIC_PID=pid, STUDY_ID="st1", SESSION_ID="se1")
    res = client.post(f"/api/v1/studies/{slug}/participants", json=body)
    assert res.status_code == 201, res.get_json()
    return res.get_json()


def current(client: FlaskClient, token: str) -> dict:
    res = client.get("/api/v1/participant/trial", headers={H: token})
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def answer_body(trial: dict, **over: Any) -> dict:
    body: dict[str, Any] = {"client_uuid": str(uuid.uuid4()), "trial_id": trial["id"], "rt_ms": 640.5}
    if trial["task"] == "realfake":
        body["answer"] = "fake"
        body["exposure_ms"] = 51.2
    else:
        body["clicks"] = [
            {"x": 0.1, "y": 0.2, "t": 100, "stroke": 0},
            {"x": 0.15, "y": 0.25, "t": 130, "stroke": 0},
            {"x": 0.8, "y": 0.9, "t": 900, "stroke": 1},
        ]
    body.update(over)
    return body


def post(client: FlaskClient, token: str, body: Any, path: str = "responses"):
    return client.post(f"/api/v1/participant/{path}", json=body, headers={H: token})


def count(app: Flask, model: type, **where: Any) -> int:
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        stmt = select(func.count()).select_from(model)
        for k, v in where.items():
            stmt = stmt.where(getattr(model, k) == v)
        return s.scalar(stmt)


def participant(app: Flask, token: str) -> Participant:
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        return s.scalar(select(Participant).where(Participant.token == token))


def finish_all(client: FlaskClient, token: str) -> list[dict]:
    trials = []
    while True:
        cur = current(client, token)
        if cur.get("done"):
            return trials
        trials.append(cur["trial"])
        res = post(client, token, answer_body(cur["trial"]))
        assert res.status_code == 201, res.get_json()


# --------------------------------------------------------------------------- whole flows


def test_realfake_flow(app: Flask, client: FlaskClient, make_study) -> None:
    slug = make_study(task="realfake", n_main=5, n_practice=2, n_catch=1)
    started = start(client, slug, pid="P1")
    token = started["token"]
    assert started["n_trials"] == 8 and started["current_index"] == 0
    assert started["condition"] in {"A", "B"}

    res = post(client, token, {}, path="complete")
    assert res.status_code == 409  # no code before the trials are answered

    trials = finish_all(client, token)
    assert [t["index"] for t in trials] == list(range(8))
    assert Counter(t["kind"] for t in trials) == {"practice": 2, "main": 5, "catch": 1}
    assert all("answer_key" in t for t in trials if t["kind"] == "practice")
    assert not any("answer_key" in t for t in trials if t["kind"] != "practice")
    assert all(t["exposure_ms"] == 50 for t in trials)

    p = participant(app, token)
    assert count(app, Response, participant_id=p.id) == 8
    assert p.current_index == 8 and p.external_id == "P1" and p.external_study_id == "st1"
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        rows = s.execute(
            select(Response, Stimulus).join(Trial, Response.trial_id == Trial.id)
            .join(Stimulus, Trial.stimulus_id == Stimulus.id)
            .where(Response.participant_id == p.id)
        ).all()
        assert all(r.correct == (st.source == "model") for r, st in rows)  # answered "fake"
        assert all(r.rt_ms == 640.5 and r.exposure_ms == 51.2 for r, _ in rows)

    res = post(client, token, {}, path="complete")
    assert res.status_code == 200
    out = res.get_json()
    assert out["completion_code"] == "C0DE42"
    assert out["redirect_url"] == "https://app.prolific.com/submissions/complete?cc=C0DE42"
    assert participant(app, token).status == "completed"


def test_clickme_trials_without_class_text_name_no_class(app: Flask, client: FlaskClient, make_study) -> None:
    """Stimuli stored without a class_text (before the column existed): a plain-word label is
    shown as words, an id like `digit1` is not shown at all."""
    slug = make_study(task="clickme", n_main=3, n_practice=0, n_catch=0, class_texts=False)
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        s.execute(text("UPDATE stimuli SET class_label = 'hot_air_balloon' WHERE stimulus_key = 's0'"))
        s.commit()
    token = start(client, slug)["token"]
    texts = {}
    for _ in range(3):
        trial = current(client, token)["trial"]
        with Session(app.extensions["sqlalchemy_engine"]) as s:
            key = s.scalar(select(Stimulus.stimulus_key).join(Trial).where(Trial.id == trial["id"]))
        texts[key] = trial["class_text"]
        assert "class_label" not in trial
        assert post(client, token, answer_body(trial)).status_code == 201
    assert texts == {"s0": "hot air balloon", "s1": None, "s2": None}


def test_clickme_flow_stores_every_click(app: Flask, client: FlaskClient, make_study) -> None:
    slug = make_study(task="clickme", n_main=3, n_practice=1, n_catch=0)
    token = start(client, slug, platform="mturk", workerId="W1", assignmentId="A1", hitId="H1")["token"]
    trials = finish_all(client, token)
    assert len(trials) == 4
    assert all(t["class_text"].startswith("the digit ") and t["exposure_ms"] is None for t in trials)
    assert not any("class_label" in t for t in trials)  # the class id never reaches the page
    assert trials[0]["settings"]["min_clicks"] == 2 and trials[0]["settings"]["feedback"] is False
    p = participant(app, token)
    assert count(app, Click) >= 12
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        r = s.scalar(select(Response).where(Response.participant_id == p.id).limit(1))
        clicks = [(c.order, c.x, c.y, c.t_ms, c.stroke) for c in r.clicks]
        assert clicks == [(0, 0.1, 0.2, 100.0, 0), (1, 0.15, 0.25, 130.0, 0), (2, 0.8, 0.9, 900.0, 1)]
        assert r.n_clicks == 3 and r.answer is None and r.correct is None
    out = post(client, token, {}, path="complete").get_json()
    assert out["redirect_url"].startswith("https://www.mturk.com/mturk/externalSubmit?")
    assert "assignmentId=A1" in out["redirect_url"]


def test_repeated_client_uuid_is_stored_once(app: Flask, client: FlaskClient, make_study) -> None:
    slug = make_study(task="clickme", n_main=3, n_practice=0)
    token = start(client, slug)["token"]
    trial = current(client, token)["trial"]
    body = answer_body(trial)
    first = post(client, token, body)
    again = post(client, token, body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["response_id"] == first.get_json()["response_id"]
    assert count(app, Response, client_uuid=body["client_uuid"]) == 1
    assert count(app, Click) == 3
    assert participant(app, token).current_index == 1
    # The same trial with a new UUID is no longer current: refused, nothing stored.
    res = post(client, token, answer_body(trial))
    assert res.status_code == 409 and res.get_json()["error"]["field"] == "trial_id"
    assert count(app, Response) == 1


def test_stored_rows_read_back_through_the_orm(app: Flask, client: FlaskClient, make_study) -> None:
    """The hot path writes below the ORM (study/response_store.py); what it stores reads back
    with the ORM's types: timestamps, booleans, JSON, the staircase state and the clicks."""
    slug = make_study(task="realfake", n_main=3, n_practice=1, n_catch=0,
                      settings={"practice_feedback": True,
                                "staircase": {"enabled": True, "down": 1, "up": 1, "step_ms": 50}})
    token = start(client, slug)["token"]
    before = dt.datetime.now(dt.UTC)
    answers = []
    for _ in range(2):  # the practice trial (feedback), then a main trial (staircase step)
        trial = current(client, token)["trial"]
        res = post(client, token, answer_body(trial))
        assert res.status_code == 201
        answers.append((trial, res.get_json()))
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        p = s.scalar(select(Participant).where(Participant.token == token))
        rows = list(s.scalars(select(Response).where(Response.participant_id == p.id).order_by(Response.id)))
        assert [r.trial_id for r in rows] == [t["id"] for t, _ in answers]
        for r, (_trial, reply) in zip(rows, answers, strict=True):
            assert r.id == reply["response_id"] and r.correct is reply["correct"]
            assert isinstance(r.correct, bool) and r.answer == "fake" and r.rt_ms == 640.5
            received = r.received_at if r.received_at.tzinfo else r.received_at.replace(tzinfo=dt.UTC)
            assert before - dt.timedelta(seconds=1) <= received <= dt.datetime.now(dt.UTC)
        assert rows[0].feedback == answers[0][1]["feedback"] and set(rows[0].feedback) == {"truth"}
        assert rows[1].feedback == {}
        assert p.current_index == 2 and p.staircase["n_trials"] == 1
        assert p.staircase["exposure_ms"] == 500 + (-50 if answers[1][1]["correct"] else 50)

    slug = make_study(task="clickme", n_main=1, n_practice=0, n_catch=0)
    token = start(client, slug)["token"]
    trial = current(client, token)["trial"]
    assert post(client, token, answer_body(trial)).status_code == 201
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        clicks = s.scalars(select(Click).join(Response).where(Response.trial_id == trial["id"])
                           .order_by(Click.order)).all()
        assert [(c.order, c.x, c.y, c.t_ms, c.stroke) for c in clicks] == [
            (0, 0.1, 0.2, 100.0, 0), (1, 0.15, 0.25, 130.0, 0), (2, 0.8, 0.9, 900.0, 1)]


def test_answers_without_a_staircase(app: Flask, client: FlaskClient, make_study) -> None:
    """A study without a staircase: on PostgreSQL its answers go the one-round-trip way
    (response_store.store_current), which works out `correct` and the practice feedback in SQL;
    the reply and the stored rows must be what the Python path gives on SQLite."""
    slug = make_study(task="realfake", n_main=2, n_practice=1, n_catch=0,
                      settings={"practice_feedback": True, "exposure_ms": 250})
    token = start(client, slug)["token"]
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        p = s.scalar(select(Participant).where(Participant.token == token))
        truth = {t.id: ("fake" if t.stimulus.source == "model" else "real") for t in p.trials}
    replies = []
    for answer in ("real", "fake", "fake"):
        trial = current(client, token)["trial"]
        body = answer_body(trial, answer=answer)
        if trial["kind"] == "main":
            body.pop("exposure_ms")  # the trial's own exposure is stored
        res = post(client, token, body)
        assert res.status_code == 201, res.get_json()
        reply = res.get_json()
        assert reply["correct"] is (answer == truth[trial["id"]])
        assert reply["feedback"] == ({"truth": truth[trial["id"]]} if trial["kind"] == "practice" else {})
        assert reply["next_index"] == trial["index"] + 1
        assert post(client, token, body).get_json() == reply  # a resend: the same answer, 200
        replies.append((trial, body, reply))
    assert count(app, Response) == 3
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        for trial, body, reply in replies:
            r = s.get(Response, reply["response_id"])
            assert (r.trial_id, r.answer, r.correct, r.feedback) == (
                trial["id"], body["answer"], reply["correct"], reply["feedback"])
            assert r.exposure_ms == (51.2 if trial["kind"] == "practice" else 250.0)
    postgres = app.extensions["sqlalchemy_engine"].dialect.name == "postgresql"
    assert (token in app.extensions.get("participations", {})) is postgres

    slug = make_study(task="clickme", n_main=1, n_practice=0, n_catch=0)
    token = start(client, slug)["token"]
    trial = current(client, token)["trial"]
    reply = post(client, token, answer_body(trial)).get_json()
    assert (reply["correct"], reply["feedback"]) == (None, {})
    assert count(app, Click) == 3


def _fail_click_inserts(app: Flask, on: bool) -> None:
    """A trigger that makes the database refuse every click row (a disk-full stand-in), or none."""
    engine = app.extensions["sqlalchemy_engine"]
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if not on:
            conn.execute(text("DROP TRIGGER fail_clicks ON clicks" if postgres else "DROP TRIGGER fail_clicks"))
        elif postgres:
            conn.execute(text("CREATE OR REPLACE FUNCTION fail_clicks() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN RAISE EXCEPTION 'disk full while writing clicks'; END $$"))
            conn.execute(text("CREATE TRIGGER fail_clicks BEFORE INSERT ON clicks "
                              "FOR EACH ROW EXECUTE FUNCTION fail_clicks()"))
        else:
            conn.execute(text("CREATE TRIGGER fail_clicks BEFORE INSERT ON clicks "
                              "BEGIN SELECT RAISE(ABORT, 'disk full while writing clicks'); END"))


def test_response_and_clicks_in_one_transaction(app: Flask, client: FlaskClient, make_study) -> None:
    """The database fails on the clicks, after the participant's progress and the response row
    were written: all of it is undone, the client gets a 5xx, and its retry is stored once."""
    slug = make_study(task="clickme", n_main=2, n_practice=0)
    token = start(client, slug)["token"]
    trial = current(client, token)["trial"]
    body = answer_body(trial)
    _fail_click_inserts(app, on=True)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    res = post(client, token, body)
    assert res.status_code == 500 and "error" in res.get_json()
    assert count(app, Response) == 0 and count(app, Click) == 0
    assert participant(app, token).current_index == 0
    _fail_click_inserts(app, on=False)
    res = post(client, token, body)  # the browser's retry succeeds, once
    assert res.status_code == 201
    assert count(app, Response) == 1 and count(app, Click) == 3
    assert participant(app, token).current_index == 1
    assert post(client, token, body).status_code == 200  # a resend gets the stored result
    assert count(app, Response) == 1 and count(app, Click) == 3


# --------------------------------------------------------------------------- refusals


def _started(client: FlaskClient, make_study, task: str = "clickme") -> tuple[str, dict]:
    slug = make_study(task=task, n_main=3, n_practice=0, n_catch=0)
    token = start(client, slug)["token"]
    return token, current(client, token)["trial"]


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"clicks": [{"x": 1.5, "y": 0.2, "t": 1}]}, 400, "clicks[0].x"),
        ({"clicks": [{"x": 0.5, "y": -0.01, "t": 1}]}, 400, "clicks[0].y"),
        ({"clicks": [{"x": 0.5, "y": 0.5, "t": -3}, {"x": 0.5, "y": 0.5, "t": 1}]}, 400, "clicks[0].t"),
        ({"clicks": [{"x": 0.5, "y": 0.5, "t": 1}] * 41}, 400, "clicks"),
        ({"clicks": [{"x": 0.5, "y": 0.5, "t": 1}]}, 400, "clicks"),  # fewer than min_clicks
        ({"clicks": "many"}, 400, "clicks"),
        ({"rt_ms": -5}, 400, "rt_ms"),
        ({"rt_ms": 1e12}, 400, "rt_ms"),
        ({"rt_ms": "fast"}, 400, "rt_ms"),
        ({"rt_ms": None}, 400, "rt_ms"),
        ({"client_uuid": "not-a-uuid"}, 400, "client_uuid"),
        ({"trial_id": 10**8}, 404, "trial_id"),
        ({"trial_id": "1"}, 400, "trial_id"),
        ({"answer": "real"}, 400, "answer"),
    ],
)
def test_bad_responses_name_the_field(app: Flask, client: FlaskClient, make_study, change: dict,
                                      status: int, field: str) -> None:
    token, trial = _started(client, make_study)
    body = {k: v for k, v in {**answer_body(trial), **change}.items() if v is not None}
    res = post(client, token, body)
    assert res.status_code == status, res.get_json()
    assert res.get_json()["error"]["field"] == field
    assert res.get_json()["error"]["message"]
    assert count(app, Response) == 0


def test_realfake_answers_are_checked(app: Flask, client: FlaskClient, make_study) -> None:
    token, trial = _started(client, make_study, task="realfake")
    for change, field in [({"answer": "maybe"}, "answer"), ({"answer": None}, "answer"),
                          ({"clicks": [{"x": 0.1, "y": 0.1, "t": 1}]}, "clicks"),
                          ({"exposure_ms": float("inf")}, "body")]:
        body = {k: v for k, v in {**answer_body(trial), **change}.items() if v is not None}
        if field == "body":
            res = client.post("/api/v1/participant/responses", headers={H: token},
                              data=f'{{"client_uuid": "{uuid.uuid4()}", "trial_id": 1, '
                              '"rt_ms": Infinity}', content_type="application/json")
        else:
            res = post(client, token, body)
        assert res.status_code == 400 and res.get_json()["error"]["field"] == field
    assert count(app, Response) == 0


def test_other_participants_trial_and_future_trial(app: Flask, client: FlaskClient, make_study) -> None:
    slug = make_study(task="realfake", n_main=3, n_practice=0, n_catch=0)
    a = start(client, slug)["token"]
    b = start(client, slug)["token"]
    trial_b = current(client, b)["trial"]
    res = post(client, a, answer_body(trial_b))
    assert res.status_code == 404 and res.get_json()["error"]["field"] == "trial_id"
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        pa = s.scalar(select(Participant).where(Participant.token == a))
        future = s.scalar(select(Trial).where(Trial.participant_id == pa.id, Trial.index == 2))
    res = post(client, a, answer_body({"id": future.id, "task": "realfake"}))
    assert res.status_code == 409 and res.get_json()["error"]["field"] == "trial_id"
    res = client.get(f"/api/v1/participant/trials/{future.id}/image", headers={H: a})
    assert res.status_code == 404  # no peeking at later images
    res = client.get(f"/api/v1/participant/trials/{trial_b['id']}/image", headers={H: a})
    assert res.status_code == 404
    assert count(app, Response) == 0


def test_transport_errors_are_json(client: FlaskClient, make_study) -> None:
    token, trial = _started(client, make_study)
    cases = [
        client.post("/api/v1/participant/responses", data="{not json", headers={H: token},
                    content_type="application/json"),
        client.post("/api/v1/participant/responses", data="[1, 2]", headers={H: token},
                    content_type="application/json"),
        client.post("/api/v1/participant/responses", data="a=1", headers={H: token},
                    content_type="application/x-www-form-urlencoded"),
        client.post("/api/v1/participant/responses", json=answer_body(trial)),
        client.post("/api/v1/participant/responses", json=answer_body(trial), headers={H: "nope"}),
        client.get("/api/v1/no/such/route"),
        client.get("/api/v1/participant/responses"),
        client.post("/api/v1/participant/responses", data=b"x" * (3 * 1024 * 1024),
                    headers={H: token}, content_type="application/json"),
    ]
    expected = [(400, "body"), (400, "body"), (415, "Content-Type"), (401, H), (401, H),
                (404, None), (405, None), (413, "body")]
    for res, (status, field) in zip(cases, expected, strict=True):
        assert res.status_code == status, (status, res.data[:200])
        assert res.is_json and res.get_json()["error"]["field"] == field
        assert res.get_json()["error"]["message"]


def test_second_start_same_external_id(client: FlaskClient, make_study) -> None:
    slug = make_study()
    start(client, slug, pid="SAME")
    res = client.post(f"/api/v1/studies/{slug}/participants",
                      json={"consent": True, "platform": "prolific", "PROLIFIC_PID": "SAME"})
    assert res.status_code == 409 and res.get_json()["error"]["field"] == "PROLIFIC_PID"
    # The page tells a fresh browser (no session) the same, clearly.
    page = client.application.test_client().get(f"/s/{slug}?PROLIFIC_PID=SAME")
    assert page.status_code == 409 and b"already taken part" in page.data
    res = client.post(f"/api/v1/studies/{slug}/participants",
                      json={"consent": True, "platform": "prolific"})
    assert res.status_code == 400 and res.get_json()["error"]["field"] == "PROLIFIC_PID"
    res = client.post(f"/api/v1/studies/{slug}/participants", json={"platform": "direct"})
    assert res.status_code == 400 and res.get_json()["error"]["field"] == "consent"


@pytest.mark.parametrize("status", ["closed", "paused"])
def test_closed_or_paused_study_refuses(client: FlaskClient, make_study, status: str) -> None:
    slug = make_study(status=status)
    res = client.post(f"/api/v1/studies/{slug}/participants", json={"consent": True})
    assert res.status_code == 410 and status in res.get_json()["error"]["message"]
    page = client.get(f"/s/{slug}?PROLIFIC_PID=X")
    assert page.status_code == 410 and f"This study is {status}".encode() in page.data


def test_full_and_unknown_study(client: FlaskClient, make_study) -> None:
    slug = make_study(settings={"max_participants": 1})
    start(client, slug, pid="first")
    res = client.post(f"/api/v1/studies/{slug}/participants", json={"consent": True})
    assert res.status_code == 410 and "full" in res.get_json()["error"]["message"]
    assert client.application.test_client().get(f"/s/{slug}").status_code == 410
    res = client.post("/api/v1/studies/nope/participants", json={"consent": True})
    assert res.status_code == 404
    assert client.get("/s/nope").status_code == 404
    draft = make_study(status="draft")
    assert client.get(f"/s/{draft}").status_code == 404


# --------------------------------------------------------------------------- design features


def test_counterbalanced_and_seed_reproduces_trials(app: Flask, client: FlaskClient, make_study) -> None:
    slug = make_study(n_main=6, n_practice=1, n_catch=1, conditions=("A", "B", "C"))
    conds = [start(client, slug)["condition"] for _ in range(6)]
    assert Counter(conds) == {"A": 2, "B": 2, "C": 2}
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        study = s.scalar(select(Study).where(Study.slug == slug))
        refs = [StimulusRef(st.id, st.role) for st in study.stimuli]
        settings = StudySettings.from_dict(study.settings)
        orders = set()
        for p in s.scalars(select(Participant).where(Participant.study_id == study.id)):
            stored = [(t.stimulus_id, t.kind) for t in p.trials]
            again = [(t.stimulus_id, t.kind) for t in build_trial_plan(refs, settings, p.seed)]
            assert stored == again and p.n_trials == len(stored)
            orders.add(tuple(stored))
        assert len(orders) > 1  # seeds differ between participants


def test_staircase_runs_on_the_server(app: Flask, client: FlaskClient, make_study) -> None:
    slug = make_study(task="realfake", n_main=8, n_practice=0, n_catch=0,
                      settings={"staircase": {"enabled": True, "down": 2, "up": 1,
                                              "step_ms": 100, "start_ms": 500}})
    token = start(client, slug)["token"]
    seen = []
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        p = s.scalar(select(Participant).where(Participant.token == token))
        truth = {t.id: ("fake" if t.stimulus.source == "model" else "real") for t in p.trials}
    plan = ["right", "right", "right", "right", "wrong", "right"]
    for outcome in plan:
        trial = current(client, token)["trial"]
        seen.append(trial["exposure_ms"])
        ans = truth[trial["id"]] if outcome == "right" else {"real": "fake", "fake": "real"}[truth[trial["id"]]]
        assert post(client, token, answer_body(trial, answer=ans, exposure_ms=None)).status_code == 201
    # 2-down-1-up: two right -> 400, two right -> 300, one wrong -> 400.
    assert seen == [500, 500, 400, 400, 300, 400]
    assert current(client, token)["trial"]["exposure_ms"] == 400
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        exposures = [r.exposure_ms for r in s.scalars(select(Response).order_by(Response.id))]
    assert exposures == seen  # without a measured value, the served exposure is stored


def test_events_are_stored(app: Flask, client: FlaskClient, make_study) -> None:
    token, trial = _started(client, make_study)
    body = {"events": [{"kind": "blur", "t": 1234.5, "trial_id": trial["id"]},
                       {"kind": "resize", "t": 2000, "detail": {"width": 800, "height": 600}}]}
    res = post(client, token, body, path="events")
    assert res.status_code == 201 and res.get_json() == {"stored": 2}
    assert count(app, BrowserEvent, kind="resize") == 1
    res = post(client, token, {"events": [{"kind": "teleport"}]}, path="events")
    assert res.status_code == 400 and res.get_json()["error"]["field"] == "events[0].kind"
    res = post(client, token, {"events": [{"kind": "blur", "trial_id": 10**8}]}, path="events")
    assert res.status_code == 404 and res.get_json()["error"]["field"] == "events[0].trial_id"
    assert count(app, BrowserEvent) == 2


def test_image_by_trial_and_security_headers(app: Flask, client: FlaskClient, make_study) -> None:
    token, trial = _started(client, make_study)
    res = client.get(trial["image_url"], headers={H: token})
    assert res.status_code == 200 and res.mimetype == "image/png"
    assert res.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(trial["image_url"]).status_code == 401
    page = client.get("/healthz")
    assert page.get_json() == {"ok": True}
    for r in (res, page):
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_resume_from_the_session(client: FlaskClient, make_study) -> None:
    slug = make_study(task="clickme")
    page = client.get(f"/s/{slug}?PROLIFIC_PID=PX&STUDY_ID=S&SESSION_ID=Q")
    assert page.status_code == 200 and b'id="agree"' in page.data
    assert b"&#34;PROLIFIC_PID&#34;: &#34;PX&#34;" in page.data
    assert b"<script>" not in page.data and b"style=" not in page.data  # CSP: no inline code
    assert client.get(f"/s/{slug}/task").status_code == 302  # no participant yet
    token = start(client, slug, pid="PX")["token"]
    again = client.get(f"/s/{slug}?PROLIFIC_PID=PX")
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/s/{slug}/task")
    task = client.get(f"/s/{slug}/task")
    assert task.status_code == 200 and f'data-token="{token}"'.encode() in task.data


def test_preview_stores_nothing(app: Flask, client: FlaskClient, make_study) -> None:
    slug = make_study(task="realfake", n_main=3, n_practice=1, n_catch=0)
    res = client.post(f"/api/v1/studies/{slug}/participants", json={"consent": True, "preview": True})
    assert res.status_code == 403  # not logged in
    with client.session_transaction() as sess:
        sess["researcher_id"] = 1
    assert client.get(f"/s/{slug}?preview=1").status_code == 200
    started = start(client, slug, preview=True)
    assert started["token"] == "preview" and started["n_trials"] == 4
    tok = started["token"]
    seen = []
    while not (cur := current(client, tok)).get("done"):
        trial = cur["trial"]
        seen.append(trial["kind"])
        assert client.get(trial["image_url"], headers={H: tok}).status_code == 200
        body = answer_body(trial)
        assert post(client, tok, body).status_code == 201
        assert post(client, tok, body).status_code == 200  # a resend changes nothing
    assert seen == ["practice", "main", "main", "main"]
    assert client.get(f"/s/{slug}/task?preview=1").status_code == 200
    assert post(client, tok, {"events": [{"kind": "blur"}]}, path="events").status_code == 201
    out = post(client, tok, {}, path="complete").get_json()
    assert out["completion_code"] == "C0DE42" and out["redirect_url"] is None
    for model in (Participant, Trial, Response, BrowserEvent):
        assert count(app, model) == 0


def test_images_come_only_from_the_stimulus_root(app: Flask, client: FlaskClient, make_study,
                                                 tmp_path) -> None:
    token, trial = _started(client, make_study)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nnot for participants")
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        t = s.get(Trial, trial["id"])
        t.stimulus.path = "../secret.png"  # a bad import: the stored path leaves STIMULI_ROOT
        stimulus_id = t.stimulus_id
        s.commit()
    res = client.get(trial["image_url"], headers={H: token})
    assert res.status_code == 404 and res.is_json
    for url in ("/api/v1/participant/trials/..%2F..%2Fsecret.png/image",
                "/api/v1/participant/trials/1%2F..%2F..%2Fsecret.png/image",
                "/static/..%2F..%2Fsecret.png"):
        res = client.get(url, headers={H: token})
        assert res.status_code == 404 and b"not for participants" not in res.data
    # Researchers see any stimulus by id; participants do not.
    other = make_study()
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        sid = s.scalar(select(Stimulus.id).join(Study).where(Study.slug == other).limit(1))
    assert client.get(f"/api/v1/stimuli/{sid}/image", headers={H: token}).status_code == 401
    with client.session_transaction() as sess:
        sess["researcher_id"] = 1
    res = client.get(f"/api/v1/stimuli/{sid}/image")
    assert res.status_code == 200 and res.data[:4] == b"\x89PNG"
    assert client.get(f"/api/v1/stimuli/{stimulus_id}/image").status_code == 404
    assert client.get("/api/v1/stimuli/99999999/image").status_code == 404


def test_no_redirect_when_the_study_says_none(client: FlaskClient, make_study) -> None:
    slug = make_study(n_main=1, n_practice=0, n_catch=0, settings={"redirect_platform": "none"})
    token = start(client, slug, pid="LAB1")["token"]
    finish_all(client, token)
    out = post(client, token, {}, path="complete").get_json()
    assert out == {"completion_code": "C0DE42", "redirect_url": None}
    direct = make_study(n_main=1, n_practice=0, n_catch=0)
    token = start(client, direct)["token"]
    finish_all(client, token)
    assert post(client, token, {}, path="complete").get_json()["redirect_url"] is None


def test_retried_start_with_the_same_key_resumes(client: FlaskClient, make_study) -> None:
    """A start whose reply was lost is retried by the same browser (same start_key): it gets its
    participant back; another browser, or one with no key, is still refused."""
    slug = make_study()
    url = f"/api/v1/studies/{slug}/participants"
    body = {"consent": True, "platform": "prolific", "PROLIFIC_PID": "LOST", "start_key": "k-1"}
    first = client.post(url, json=body)
    assert first.status_code == 201
    fresh = client.application.test_client()
    again = fresh.post(url, json=body)
    assert again.status_code == 200
    assert again.get_json()["token"] == first.get_json()["token"]
    assert again.get_json()["participant_id"] == first.get_json()["participant_id"]
    # The retry also set the session cookie, so the page resumes at the task.
    assert fresh.get(f"/s/{slug}?PROLIFIC_PID=LOST").status_code == 302
    for other in ({**body, "start_key": "k-2"}, {k: v for k, v in body.items() if k != "start_key"}):
        res = client.application.test_client().post(url, json=other)
        assert res.status_code == 409 and res.get_json()["error"]["field"] == "PROLIFIC_PID"
    res = client.post(url, json={**body, "start_key": "x" * 65})
    assert res.status_code == 400 and res.get_json()["error"]["field"] == "start_key"
