"""The study page's chart data and charts: counts per minute from SQL, accuracy and d' through
analysis's functions on the export's columns, click heat maps, and the SVG they make."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from researcher_helpers import create_demo_study, make_app
from sqlalchemy import select

from study import db
from study.researcher import charts, dashboard_data
from study.tables import Click, Participant, Response, Stimulus, Study, Trial

T0 = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)


def _at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _participant(s, study_id: int, n: int, status: str, started: float, last_seen: float,
                 completed: float | None = None) -> Participant:
    p = Participant(study_id=study_id, token=f"tok-{study_id}-{n}", public_id=f"pub-{study_id}-{n}",
                    platform="direct", status=status, seed=n, started_at=_at(started),
                    last_seen_at=_at(last_seen),
                    completed_at=_at(completed) if completed is not None else None)
    s.add(p)
    s.flush()
    return p


def _answer(s, p: Participant, index: int, stim: Stimulus, answer: str | None,
            clicks: list[tuple[float, float]] = ()) -> None:
    trial = Trial(participant_id=p.id, index=index, stimulus_id=stim.id, kind="main")
    s.add(trial)
    s.flush()
    correct = None if answer is None else (answer == "fake") == (stim.source == "model")
    resp = Response(trial_id=trial.id, participant_id=p.id, client_uuid=f"{p.public_id}-{index}",
                    answer=answer, correct=correct, rt_ms=500.0, n_clicks=len(clicks))
    s.add(resp)
    s.flush()
    for k, (x, y) in enumerate(clicks):
        s.add(Click(response_id=resp.id, order=k, x=x, y=y, t_ms=10.0 * k, stroke=0))


def test_cumulative_totals_hand_worked():
    points = [(_at(2), 1), (_at(0), 2), (_at(2), 3)]  # out of order, two at minute 2
    assert charts.cumulative(points, end=_at(5)) == ([_at(0), _at(2), _at(5)], [2, 6, 6])
    assert charts.cumulative(points) == ([_at(0), _at(2)], [2, 6])
    assert charts.cumulative(points, _at(-1), _at(2)) == ([_at(-1), _at(0), _at(2)], [0, 2, 6])
    assert charts.cumulative(points, _at(0)) == ([_at(0), _at(2)], [2, 6])
    assert charts.cumulative([], _at(0), _at(5)) == ([_at(0), _at(5)], [0, 0])


def _timeline_study(app, stimuli_dir) -> int:
    sid = create_demo_study(app, stimuli_dir(1, 1))
    other = create_demo_study(app, stimuli_dir(1, 1), slug="other")
    with app.app_context():
        s = db.session()
        # started 9:00:10 and 9:00:50 (one minute), 9:05; completed 9:07; returned seen last 9:06
        _participant(s, sid, 0, "completed", 10 / 60, 7, completed=7)
        _participant(s, sid, 1, "returned", 50 / 60, 6)
        _participant(s, sid, 2, "started", 5, 5.5)
        _participant(s, other, 3, "completed", 1, 2, completed=2)  # another study's: left out
        s.commit()
    return sid


def _check_timeline(app, sid):
    with app.app_context():
        counts = dashboard_data.timeline_counts(db.session(), sid)
    assert counts == {"started": [(_at(0), 2), (_at(5), 1)], "completed": [(_at(7), 1)],
                      "returned": [(_at(6), 1)]}


def test_timeline_counts_per_minute_by_status(app, stimuli_dir):
    _check_timeline(app, _timeline_study(app, stimuli_dir))


@pytest.mark.postgres
def test_timeline_counts_on_postgres(postgres_url, tmp_path, stimuli_dir):
    from researcher_helpers import fresh_postgres_database

    with fresh_postgres_database(postgres_url) as url:
        app = make_app(tmp_path, database_url=url)
        try:
            _check_timeline(app, _timeline_study(app, stimuli_dir))
        finally:
            app.extensions["sqlalchemy_engine"].dispose()


def test_accuracy_and_dprime_by_model_match_hand_worked_values(app, stimuli_dir):
    """Two participants, each judging 2 fakes and 2 reals: fakes called fake 3 of 4 times, reals
    called fake 1 of 4. Log-linear rates H = 3.5/5, F = 1.5/5, so d' = z(0.7) - z(0.3)."""
    sid = create_demo_study(app, stimuli_dir(2, 2))
    with app.app_context():
        s = db.session()
        study = s.get(Study, sid)
        stims = s.scalars(select(Stimulus).where(Stimulus.study_id == sid).order_by(Stimulus.id)).all()
        reals = [x for x in stims if x.source == "real"]
        fakes = [x for x in stims if x.source == "model"]
        plans = [(["fake", "fake"], ["real", "real"]), (["fake", "real"], ["fake", "real"])]
        for n, (on_fakes, on_reals) in enumerate(plans):
            p = _participant(s, sid, n, "completed", 0, 1, completed=1)
            for i, (stim, ans) in enumerate(zip(fakes + reals, on_fakes + on_reals, strict=True)):
                _answer(s, p, i, stim, ans)
        s.commit()
        trials, _ = dashboard_data.export_tables(s, study)
    table = dashboard_data.judgment_table(trials, n_boot=200)
    assert len(table) == 1
    row = table.iloc[0]
    z = NormalDist().inv_cdf
    assert (row["model"], row["guidance"]) == ("cfgdm", 1.5)
    assert (row["hits"], row["n_signal"], row["false_alarms"], row["n_noise"]) == (3, 4, 1, 4)
    assert row["dprime"] == pytest.approx(z(0.7) - z(0.3), abs=1e-9)
    assert row["accuracy"] == pytest.approx(6 / 8)
    assert row["dprime_lo"] <= row["dprime"] <= row["dprime_hi"]
    assert row["accuracy_lo"] <= row["accuracy"] <= row["accuracy_hi"]
    svg = charts.judgment_svg(table)
    assert "cfgdm w=1.5" in svg and "2 participants" in svg


def test_judgment_table_is_empty_before_any_answer():
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in
                          ("task", "trial_kind", "answer", "source", "model", "guidance")})
    assert dashboard_data.judgment_table(empty).empty
    assert "No answers to generated images yet." in charts.judgment_svg(pd.DataFrame())


def test_heat_map_of_a_stimulus_holds_its_own_clicks_only(app, stimuli_dir):
    sid = create_demo_study(app, stimuli_dir(2, 0), task="clickme")
    with app.app_context():
        s = db.session()
        study = s.get(Study, sid)
        first, second = s.scalars(select(Stimulus).where(Stimulus.study_id == sid)
                                  .order_by(Stimulus.id)).all()
        for n in range(3):
            p = _participant(s, sid, n, "completed", 0, 1, completed=1)
            _answer(s, p, 0, first, None, [(0.2, 0.2), (0.25, 0.2)])
            _answer(s, p, 1, second, None, [(0.8, 0.8)] if n else [])
        s.commit()
        image = np.zeros((32, 32))
        found = dashboard_data.heat_map(*dashboard_data.export_tables(s, study, first), image)
        other = dashboard_data.heat_map(*dashboard_data.export_tables(s, study, second), image)
        third = s.get(Stimulus, second.id)
        third_trials, third_clicks = dashboard_data.export_tables(s, study, third)
    assert found.n_trials == 3 and other.n_trials == 2  # a trial without clicks paints nothing
    row, col = np.unravel_index(np.argmax(found.heat), found.heat.shape)
    assert row < 16 and col < 16 and found.heat[24:, 24:].max() == 0
    row, col = np.unravel_index(np.argmax(other.heat), other.heat.shape)
    assert row >= 16 and col >= 16 and other.heat[:12, :12].max() == 0
    assert len(third_clicks) == 2 and set(third_trials["stimulus_id"]) == {second.stimulus_key}
    assert dashboard_data.heat_map(third_trials, third_clicks.iloc[:0], image).heat is None


def _pixels(svg: str) -> np.ndarray:
    """The RGB pixels of the one raster image matplotlib embeds in `svg` (stimulus and heat map
    composited)."""
    (data,) = re.findall(r'xlink:href="data:image/png;base64,([^"]+)"', svg)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), dtype=int)


def test_heat_map_svg_shows_the_stimulus_and_says_when_nobody_clicked():
    image = np.linspace(0, 1, 64).reshape(8, 8)
    heat = np.zeros((8, 8))
    heat[2, 3] = 1.0
    with_heat = charts.heatmap_svg(image, heat, "s1 (3 trials)")
    without = charts.heatmap_svg(image, None, "s1 (0 trials)")
    coloured, grey = _pixels(with_heat), _pixels(without)
    spread = coloured.max(axis=2) - coloured.min(axis=2)  # 0 where a pixel is grey
    assert spread.max() > 60  # the heat map's colour over the clicked pixel
    assert (spread == 0).mean() > 0.8  # elsewhere the grey stimulus, untinted
    assert (grey.max(axis=2) == grey.min(axis=2)).all() and grey.max() > 200
    assert "s1 (0 trials): no clicks yet" in without and "no clicks yet" not in with_heat


def test_timeline_svg_names_each_series_with_its_total():
    svg = charts.timeline_svg({"started": [(_at(0), 2), (_at(5), 1)], "completed": [(_at(7), 1)],
                               "returned": []})
    assert "started (3)" in svg and "completed (1)" in svg and "returned (0)" in svg
    assert "No participants yet." in charts.timeline_svg({"started": [], "completed": []})
