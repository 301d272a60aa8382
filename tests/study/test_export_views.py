"""The SQL views of the export columns (migration 0002) hold what the file export holds, so that
analysis.load.load_database reads a live study database (SQLite and PostgreSQL)."""

from __future__ import annotations

import math

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_api import finish_all, post, start

from analysis.load import load_database
from study.export import iter_batches
from study.tables import Study


def _file_rows(app: Flask, slug: str, table: str) -> list[dict]:
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        study = s.scalar(select(Study).where(Study.slug == slug))
        return [
            row
            for batch in iter_batches(s, study, table, "k", pseudonymise=False)
            for row in batch
        ]


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is None and b is None
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b)
    return a == b


def test_views_hold_the_export_columns(app: Flask, client: FlaskClient, make_study, database_url) -> None:
    rf = make_study(task="realfake")
    cm = make_study(task="clickme")
    for slug in (rf, rf, cm):
        token = start(client, slug)["token"]  # direct participants: the export's id is public_id
        finish_all(client, token)
        post(client, token, {"events": [{"kind": "blur", "t": 12.5}]}, "events")

    for slug in (rf, cm):
        got = load_database(database_url, study=slug)
        for table, frame in (("trials", got.trials), ("clicks", got.clicks)):
            want = _file_rows(app, slug, table)
            assert len(frame) == len(want)
            assert want or (table == "clicks" and slug == rf)  # real-or-fake trials have no clicks
            key = ["participant", "trial_index"] + (["order"] if table == "clicks" else [])
            want.sort(key=lambda r: tuple(r[k] for k in key))
            rows = frame.sort_values(key).to_dict("records")
            for w, g in zip(want, rows, strict=True):
                for col, value in w.items():
                    if col == "received_at":
                        continue  # ISO text in files, the database's own timestamp text here
                    if col == "design_hash":
                        continue  # analysis reads no design hash (test_design_versions checks it)
                    gv = g[col]
                    if value is None and (gv == "" or (isinstance(gv, float) and math.isnan(gv))):
                        gv = None  # analysis reads a missing text as "" and a missing number as NaN
                    assert _same(value, gv) or str(value) == str(gv), (table, col, value, gv)
        assert len(got.events) == len(_file_rows(app, slug, "events")) >= 1
