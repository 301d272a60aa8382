"""Live progress counts from aggregate SQL, checked against what was inserted."""

from __future__ import annotations

import statistics

import pytest
from researcher_helpers import create_demo_study, make_app, populate

from study import db
from study.progress import study_progress


def _check(app, study_id, inserted, n_participants):
    with app.app_context():
        p = study_progress(db.session(), [study_id, 999])[study_id]
        empty = study_progress(db.session(), [999])[999]
    statuses = ["completed", "started", "returned", "screened_out"]
    expect = {s: sum(statuses[i % 4] == s for i in range(n_participants)) for s in statuses}
    assert (p.started, p.completed, p.returned, p.screened_out, p.in_progress) == (
        n_participants, expect["completed"], expect["returned"], expect["screened_out"], expect["started"])
    rows = inserted["responses"]
    assert p.responses == len(rows)
    assert p.median_rt_ms == pytest.approx(statistics.median(r["rt_ms"] for r in rows))
    catch = [r for r in rows if r["kind"] == "catch"]
    assert p.catch_trials == len(catch)
    assert p.catch_failures == sum(not r["correct"] for r in catch) > 0
    assert empty.started == 0 and empty.median_rt_ms is None


@pytest.mark.parametrize("n_participants,trials", [(5, 7), (6, 5)])  # odd and even response counts
def test_progress_matches_inserted_rows(app, stimuli_dir, n_participants, trials):
    sid = create_demo_study(app, stimuli_dir(3, 3))
    inserted = populate(app, sid, n_participants, trials)
    other = create_demo_study(app, stimuli_dir(3, 3), slug="other")
    populate(app, other, 2, 3, seed=1)  # another study's rows must not leak in
    _check(app, sid, inserted, n_participants)


@pytest.mark.postgres
def test_progress_on_postgres(postgres_url, tmp_path, stimuli_dir, pg_app):
    sid = create_demo_study(pg_app, stimuli_dir(3, 3))
    inserted = populate(pg_app, sid, 6, 5)
    _check(pg_app, sid, inserted, 6)


@pytest.fixture
def pg_app(postgres_url, tmp_path):
    from researcher_helpers import fresh_postgres_database

    with fresh_postgres_database(postgres_url) as url:
        app = make_app(tmp_path, database_url=url)
        yield app
        app.extensions["sqlalchemy_engine"].dispose()
