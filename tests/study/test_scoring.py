"""Scoring is defined once (study.participation.scoring): the Python path and PostgreSQL's
one-round-trip statement store and answer what `score` says, on every kind of trial."""

from __future__ import annotations

import itertools
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from test_api import H, current, start

from study import response_store
from study.participation.scoring import (
    TRUTH_OF_SOURCE,
    Score,
    answer_key,
    score,
    sql_parameters,
    truth,
    truth_sql,
)
from study.tables import SOURCES, Response, Stimulus, Trial


def test_a_models_image_is_fake_and_every_other_is_real() -> None:
    assert truth("model") == "fake" and truth("real") == "real"
    assert truth("scanned") == "real" and truth(None) == "real"
    assert set(TRUTH_OF_SOURCE) == set(SOURCES)  # every stored source has its truth spelt out


def test_score_by_hand() -> None:
    assert score("realfake", "main", "model", "fake", True) == Score(True, {})
    assert score("realfake", "main", "real", "fake", True) == Score(False, {})
    assert score("realfake", "practice", "model", "real", True) == Score(False, {"truth": "fake"})
    assert score("realfake", "practice", "model", "real", False) == Score(False, {})
    assert score("realfake", "catch", "real", "real", True) == Score(True, {})
    assert score("clickme", "practice", "model", None, True) == Score(None, {})
    assert answer_key("realfake", "practice", "real", True) == "real"
    assert answer_key("realfake", "main", "real", True) is None
    assert answer_key("clickme", "practice", "real", True) is None
    assert sql_parameters("realfake", True) == {"judged": True, "feedback_kind": "practice"}
    assert sql_parameters("clickme", True) == {"judged": False, "feedback_kind": None}
    assert sql_parameters("realfake", False) == {"judged": True, "feedback_kind": None}


def test_truth_sql_agrees_with_truth_in_the_database(app: Flask) -> None:
    sources = [*SOURCES, "other", None]
    with app.extensions["sqlalchemy_engine"].connect() as conn:
        for source in sources:
            got = conn.execute(
                text(f"SELECT {truth_sql('src')} FROM (SELECT CAST(:s AS VARCHAR(16)) AS src) AS t"),
                {"s": source},
            ).scalar_one()
            assert got == truth(source), source


def _walk(client: FlaskClient, token: str) -> list[tuple[dict, str, dict]]:
    """Answer every trial, alternating real and fake: (trial, answer, reply) per trial."""
    out = []
    for i in itertools.count():
        cur = current(client, token)
        if cur.get("done"):
            return out
        trial = cur["trial"]
        body = {"client_uuid": str(uuid.uuid4()), "trial_id": trial["id"], "rt_ms": 500.0}
        answer = None
        if trial["task"] == "realfake":
            answer = ("real", "fake")[i % 2]
            body.update(answer=answer, exposure_ms=50)
        else:
            body["clicks"] = [{"x": 0.1, "y": 0.2, "t": 100}, {"x": 0.3, "y": 0.4, "t": 200}]
        res = client.post("/api/v1/participant/responses", json=body, headers={H: token})
        assert res.status_code == 201, res.get_json()
        out.append((trial, answer, res.get_json()))


@pytest.mark.parametrize("task,settings", [
    ("realfake", {"practice_feedback": True}),
    ("realfake", {"practice_feedback": False}),
    ("realfake", {"practice_feedback": True, "staircase": {"enabled": True}}),
    ("clickme", {"practice_feedback": True}),
])
def test_stored_and_answered_scores_follow_score(app: Flask, client: FlaskClient, make_study,
                                                 monkeypatch, database_url: str, task: str,
                                                 settings: dict) -> None:
    one_trip = []
    real_store_current = response_store.store_current

    def spy(*args, **kwargs):
        stored = real_store_current(*args, **kwargs)
        one_trip.append(stored is not None)
        return stored

    monkeypatch.setattr(response_store, "store_current", spy)
    slug = make_study(task=task, n_main=6, n_practice=3, n_catch=2, settings=settings)
    token = start(client, slug)["token"]
    walked = _walk(client, token)
    assert {t["kind"] for t, _, _ in walked} == {"practice", "main", "catch"}
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        for trial, answer, reply in walked:
            source = s.scalar(select(Stimulus.source).join(Trial, Trial.stimulus_id == Stimulus.id)
                              .where(Trial.id == trial["id"]))
            expected = score(task, trial["kind"], source, answer, settings["practice_feedback"])
            row = s.scalar(select(Response).where(Response.trial_id == trial["id"]))
            assert (reply["correct"], reply["feedback"]) == (expected.correct, expected.feedback)
            assert (row.correct, row.feedback) == (expected.correct, expected.feedback)
            assert trial.get("answer_key") == answer_key(task, trial["kind"], source,
                                                         settings["practice_feedback"])
    staircase = settings.get("staircase", {}).get("enabled", False)
    if database_url.startswith("postgresql") and not staircase:
        assert one_trip and all(one_trip)  # every answer took the one-round-trip statement
    else:
        assert not any(one_trip)
