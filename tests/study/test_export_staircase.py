"""The export records each condition's staircase settings (data_dictionary.json, and the
study's rows for a database read), and the analysis replays the staircase with them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_api import answer_body, current, post, start

from analysis import judgments
from analysis.__main__ import main as analysis_main
from analysis.load import load_database, load_export
from analysis.staircase import StaircaseRule
from study.export import export_study
from study.settings import StaircaseSettings
from study.staircase import threshold
from study.tables import Condition, Participant, Study

STUDY_STAIRCASE = {"enabled": True, "down": 2, "step_ms": 50, "start_ms": 500,
                   "n_reversals_threshold": 4}
B_OVERRIDES = {"staircase": {"step_ms": 100}}
# right/wrong per main trial: 1-up-2-down reverses on the wrong answers and the pairs after them
PLAN = [True, True, True, True, False, True, True, False, True, True, True, True, False, True]


def _run_study(app: Flask, client: FlaskClient, make_study, n_participants: int = 4) -> str:
    slug = make_study(task="realfake", n_main=len(PLAN), n_practice=0, n_catch=0,
                      settings={"staircase": STUDY_STAIRCASE})
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        study = s.scalar(select(Study).where(Study.slug == slug))
        s.scalar(select(Condition).where(Condition.study_id == study.id,
                                         Condition.name == "B")).settings = B_OVERRIDES
        s.commit()
    for _ in range(n_participants):
        token = start(client, slug)["token"]
        with Session(app.extensions["sqlalchemy_engine"]) as s:
            p = s.scalar(select(Participant).where(Participant.token == token))
            truth = {t.id: "fake" if t.stimulus.source == "model" else "real" for t in p.trials}
        for right in PLAN:
            trial = current(client, token)["trial"]
            said = truth[trial["id"]] if right else {"real": "fake",
                                                     "fake": "real"}[truth[trial["id"]]]
            # without a measured exposure the served one is stored
            res = post(client, token, answer_body(trial, answer=said, exposure_ms=None))
            assert res.status_code == 201, res.get_json()
    return slug


def _server_thresholds(app: Flask, slug: str) -> dict[str, tuple[str, float]]:
    """public id -> (condition, the threshold of the staircase state the server holds)."""
    out = {}
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        study = s.scalar(select(Study).where(Study.slug == slug))
        names = {c.id: c.name for c in s.scalars(select(Condition))}
        for p in s.scalars(select(Participant).where(Participant.study_id == study.id)):
            name = names[p.condition_id]
            cfg = StaircaseSettings(**{**STUDY_STAIRCASE, **(B_OVERRIDES["staircase"]
                                                             if name == "B" else {})})
            out[p.public_id] = (name, threshold(p.staircase, cfg))
    return out


def test_export_records_the_staircase_and_the_analysis_replays_it(
        app: Flask, client: FlaskClient, make_study, tmp_path: Path, database_url: str) -> None:
    slug = _run_study(app, client, make_study)
    out = tmp_path / "export"
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        export_study(s, slug, out, fmt="csv", secret_key="k", pseudonymise=False)
    dictionary = json.loads((out / "data_dictionary.json").read_text())
    study_rule = {**StaircaseSettings().__dict__, **STUDY_STAIRCASE}
    assert dictionary["staircase"] == study_rule
    assert dictionary["conditions"] == {"A": {"staircase": study_rule},
                                        "B": {"staircase": {**study_rule, "step_ms": 100}}}

    exp = load_export(out)
    rules = {"": StaircaseRule.from_dict(study_rule), "A": StaircaseRule.from_dict(study_rule),
             "B": StaircaseRule(down=2, step_ms=100, start_ms=500, n_reversals_threshold=4)}
    (version,) = dictionary["design_versions"]  # the study was never edited: one version
    assert exp.staircase == {**{(slug, c): r for c, r in rules.items()},
                             **{(slug, c, version): r for c, r in rules.items()}}
    assert set(exp.trials["design_hash"]) == {version}
    assert str(out / "data_dictionary.json") in exp.sources
    # the database holds the same settings in the study's and its conditions' rows
    assert load_database(database_url, study=slug).staircase == exp.staircase

    rt = judgments.judgment_trials(exp.trials)
    thr = judgments.staircase_thresholds(rt, recorded=exp.staircase).set_index("participant")
    server = _server_thresholds(app, slug)
    assert set(thr.index) == set(server) and set(thr["condition"]) == {"A", "B"}
    assert (thr["note"] == "").all() and (thr["rule_from"] == "recorded").all()
    for pid, (condition, want) in server.items():
        assert thr.loc[pid, "condition"] == condition
        assert want is not None and thr.loc[pid, "threshold_ms"] == want, pid
    # the app's defaults (1-up-3-down) do not reproduce these exposures
    assert judgments.staircase_thresholds(rt)["note"].str.contains("do not reproduce").all()

    report = tmp_path / "report"
    assert analysis_main(["report", "--export", str(out), "--out", str(report),
                          "--n-boot", "20", "--ceiling-repeats", "2"]) == 0
    got = pd.read_csv(report / "tables" / "staircase_thresholds.csv", keep_default_na=False)
    assert (got["rule_from"] == "recorded").all() and (got["note"] == "").all()
    np.testing.assert_allclose(got.set_index("participant").loc[list(server), "threshold_ms"]
                               .astype(float), [server[p][1] for p in server])
    html = (report / "report.html").read_text()
    assert "step_ms=100" in html and "recorded in the export" in html


def test_a_condition_without_a_staircase_is_recorded_as_off(
        app: Flask, client: FlaskClient, make_study, tmp_path: Path) -> None:
    slug = make_study(task="realfake", settings={"exposure_ms": 250})
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        export_study(s, slug, tmp_path, fmt="parquet", secret_key="k")
    dictionary = json.loads((tmp_path / "data_dictionary.json").read_text())
    assert dictionary["staircase"]["enabled"] is False
    assert load_export(tmp_path).staircase == {(slug, ""): None, (slug, "A"): None,
                                               (slug, "B"): None}
