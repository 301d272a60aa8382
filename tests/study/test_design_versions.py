"""Design versions: the hash of settings and stimulus set (pure), and on SQLite and PostgreSQL a
participant keeps being served the settings it started under after the study is edited; the
export and the export_trials view show each participant's version."""

from __future__ import annotations

import copy
import math

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from test_api import answer_body, current, finish_all, post, start

from study import db
from study.export import data_dictionary, iter_batches
from study.participation.design import canonical_json, current_design, design_hash
from study.researcher.builder import edit_settings
from study.settings import StudySettings
from study.tables import DesignVersion, Participant, Study

SETTINGS = StudySettings.from_dict({"exposure_ms": 300, "staircase": {"enabled": True}}).to_dict()
STIMULI = [("real-1", "a" * 64, "main"), ("fake-1", "b" * 64, "main"), ("real-2", "c" * 64, "catch")]


def _reordered(value):
    """The same JSON value with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    return value


def test_hash_is_stable_under_key_and_stimulus_order() -> None:
    digest = design_hash(SETTINGS, STIMULI)
    assert len(digest) == 64 and int(digest, 16) >= 0
    shuffled = _reordered(SETTINGS)
    assert list(shuffled) != list(SETTINGS)
    assert design_hash(shuffled, list(reversed(STIMULI))) == digest
    assert design_hash(copy.deepcopy(SETTINGS), STIMULI) == digest


@pytest.mark.parametrize("change", [
    lambda s, st: ({**s, "exposure_ms": 301.0}, st),
    lambda s, st: ({**s, "staircase": {**s["staircase"], "step_ms": 40.0}}, st),
    lambda s, st: (s, [("real-1", "d" * 64, "main")] + st[1:]),  # a stimulus file changed
    lambda s, st: (s, st[:2] + [("real-2", "c" * 64, "main")]),  # a stimulus role changed
    lambda s, st: (s, st[:2]),  # a stimulus removed
])
def test_hash_changes_with_a_setting_or_a_stimulus(change) -> None:
    settings, stimuli = change(copy.deepcopy(SETTINGS), list(STIMULI))
    assert design_hash(settings, stimuli) != design_hash(SETTINGS, STIMULI)


def test_canonical_json_refuses_nan() -> None:
    assert canonical_json({"b": 1, "a": [1.5]}) == '{"a":[1.5],"b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": math.nan})


def _design_of(app: Flask, slug: str) -> str:
    with app.app_context():
        study = db.session().scalar(select(Study).where(Study.slug == slug))
        return current_design(db.session(), study)[0]


def test_an_edit_is_a_new_version_and_earlier_participants_keep_theirs(
        app: Flask, client: FlaskClient, make_study, database_url: str) -> None:
    slug = make_study(task="realfake", n_main=3, n_practice=0, n_catch=0, conditions=())
    first = _design_of(app, slug)
    a = start(client, slug)["token"]
    assert current(client, a)["trial"]["exposure_ms"] == 50

    with app.app_context():  # the researcher's edit: longer exposure, confidence asked
        study = db.session().scalar(select(Study).where(Study.slug == slug))
        second = edit_settings(db.session(), study, {
            "settings.exposure_ms": ["300"], "settings.confidence.enabled": ["false", "true"]})
    assert second != first and second == _design_of(app, slug)

    b = start(client, slug)["token"]
    assert current(client, b)["trial"]["exposure_ms"] == 300
    assert current(client, a)["trial"]["exposure_ms"] == 50  # A's version: no change
    no_rating = post(client, b, answer_body(current(client, b)["trial"]))
    assert no_rating.status_code == 400 and "confidence" in no_rating.get_data(as_text=True)
    assert post(client, b, answer_body(current(client, b)["trial"], confidence=2)).status_code == 201
    # A's next trials keep A's exposure, and A answers without a rating, as A's settings say.
    assert [t["exposure_ms"] for t in finish_all(client, a)] == [50, 50, 50]

    engine = app.extensions["sqlalchemy_engine"]
    with Session(engine) as s:
        hashes = dict(s.execute(select(Participant.token, Participant.design_hash)).all())
        assert hashes == {a: first, b: second}
        versions = {v.hash: v for v in s.scalars(select(DesignVersion))}
        assert set(versions) == {first, second}
        assert versions[first].settings["exposure_ms"] == 50
        assert versions[second].settings["confidence"]["enabled"] is True
        study = s.scalar(select(Study).where(Study.slug == slug))
        exported = {(r["participant"], r["design_hash"])
                    for batch in iter_batches(s, study, "trials", "k", pseudonymise=False)
                    for r in batch}
        public = dict(s.execute(select(Participant.token, Participant.public_id)).all())
        dictionary = data_dictionary(study, pseudonymise=False, fmt="csv")["design_versions"]
    assert exported == {(public[a], first), (public[b], second)}
    assert list(dictionary) == [first, second]
    assert [v["participants"] for v in dictionary.values()] == [1, 1]
    assert dictionary[first]["settings"]["exposure_ms"] == 50
    assert dictionary[second]["settings"]["exposure_ms"] == 300
    with engine.connect() as conn:
        viewed = set(conn.execute(text(
            "SELECT DISTINCT participant, design_hash FROM export_trials WHERE study = :s"),
            {"s": slug}).all())
    assert viewed == exported


def test_the_data_dictionary_gives_each_versions_staircases(
        app: Flask, client: FlaskClient, make_study) -> None:
    """An edit of the staircase (1-up-2-down, then 1-up-3-down) keeps the first version's rule for
    the participants who started under it: the dictionary lists each version's staircase and its
    condition's, merged as the server merges them, beside the settings at export."""
    from study.tables import Condition

    slug = make_study(task="realfake", n_main=3, n_practice=0, n_catch=0, conditions=("fine",),
                      settings={"staircase": {"enabled": True, "down": 2}})
    with app.app_context():
        study = db.session().scalar(select(Study).where(Study.slug == slug))
        db.session().scalar(select(Condition).where(Condition.study_id == study.id)).settings = {
            "staircase": {"step_ms": 25}}
        db.session().commit()
    first = _design_of(app, slug)
    start(client, slug)
    with app.app_context():
        study = db.session().scalar(select(Study).where(Study.slug == slug))
        second = edit_settings(db.session(), study, {"settings.staircase.down": ["3"]})
    start(client, slug)
    with app.app_context():
        study = db.session().scalar(select(Study).where(Study.slug == slug))
        dictionary = data_dictionary(study, pseudonymise=False, fmt="csv")
    versions = dictionary["design_versions"]
    assert list(versions) == [first, second]
    assert [versions[h]["staircase"]["down"] for h in (first, second)] == [2, 3]
    assert [versions[h]["conditions"]["fine"]["staircase"]["down"] for h in (first, second)] == [2, 3]
    assert {versions[h]["conditions"]["fine"]["staircase"]["step_ms"] for h in (first, second)} == {25}
    assert versions[first]["staircase"]["step_ms"] == StudySettings().staircase.step_ms
    assert dictionary["staircase"]["down"] == 3 and dictionary["conditions"]["fine"]["staircase"]["down"] == 3
