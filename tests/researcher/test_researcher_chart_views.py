"""The study page's chart routes: login, 404s, SVG with its own policy, empty and filled studies,
and the page that shows the charts and the stimulus gallery."""

from __future__ import annotations

import pytest
from researcher_helpers import create_demo_study, populate
from sqlalchemy import select

from study import db
from study.researcher.views import SVG_POLICY
from study.tables import Stimulus


def _stimulus_ids(app, study_id: int) -> list[int]:
    with app.app_context():
        return list(db.session().scalars(select(Stimulus.id).where(Stimulus.study_id == study_id)
                                         .order_by(Stimulus.id)))


def test_charts_need_a_login(app, client, researcher, stimuli_dir):
    create_demo_study(app, stimuli_dir(1, 1))
    resp = client.get("/researcher/studies/demo/charts/timeline.svg")
    assert resp.status_code == 302 and "/researcher/login" in resp.headers["Location"]
    resp = client.get("/researcher/studies/demo/charts/judgments.svg",
                      headers={"Accept": "application/json"})
    assert resp.status_code == 401


def test_unknown_study_task_or_stimulus_is_404(app, logged_in, stimuli_dir):
    rf = create_demo_study(app, stimuli_dir(1, 1), slug="rf")
    cm = create_demo_study(app, stimuli_dir(1, 1), slug="cm", task="clickme")
    rf_stim, cm_stim = _stimulus_ids(app, rf)[0], _stimulus_ids(app, cm)[0]
    for path in ("/researcher/studies/nope/charts/timeline.svg",
                 "/researcher/studies/nope/charts/judgments.svg",
                 f"/researcher/studies/nope/charts/heatmap/{cm_stim}.svg",
                 "/researcher/studies/cm/charts/judgments.svg",  # ClickMe has no judgments
                 f"/researcher/studies/rf/charts/heatmap/{rf_stim}.svg",  # nor real-or-fake clicks
                 f"/researcher/studies/cm/charts/heatmap/{rf_stim}.svg",  # another study's image
                 "/researcher/studies/cm/charts/heatmap/999999.svg",
                 "/researcher/studies/cm/charts/heatmap/99999999999999999999.svg"):  # > 32 bits
        assert logged_in.get(path).status_code == 404, path


def test_empty_study_charts_say_there_is_no_data_yet(app, logged_in, stimuli_dir):
    create_demo_study(app, stimuli_dir(1, 1), slug="rf")
    cm = create_demo_study(app, stimuli_dir(2, 0), slug="cm", task="clickme")
    first = _stimulus_ids(app, cm)[0]
    expected = {
        "/researcher/studies/rf/charts/timeline.svg": "No participants yet.",
        "/researcher/studies/rf/charts/judgments.svg": "No answers to generated images yet.",
        f"/researcher/studies/cm/charts/heatmap/{first}.svg": "(0 trials): no clicks yet",
    }
    for path, words in expected.items():
        resp = logged_in.get(path)
        assert resp.status_code == 200, path
        assert resp.mimetype == "image/svg+xml"
        assert resp.headers["Content-Security-Policy"] == SVG_POLICY
        assert resp.headers["Cache-Control"] == "no-store"
        assert words in resp.get_data(as_text=True), path


def test_filled_study_charts_show_its_participants_and_groups(app, logged_in, stimuli_dir):
    sid = create_demo_study(app, stimuli_dir(3, 3), slug="rf")
    populate(app, sid, 8, 5)  # statuses cycle completed, started, returned, screened_out
    timeline = logged_in.get("/researcher/studies/rf/charts/timeline.svg").get_data(as_text=True)
    assert "started (8)" in timeline and "completed (2)" in timeline
    assert "returned (2)" in timeline
    judgments = logged_in.get("/researcher/studies/rf/charts/judgments.svg").get_data(as_text=True)
    assert "cfgdm w=1.5" in judgments and "8 participants" in judgments


def test_clickme_heat_map_counts_the_trials_of_its_stimulus(app, logged_in, stimuli_dir):
    sid = create_demo_study(app, stimuli_dir(2, 0), slug="cm", task="clickme")
    populate(app, sid, 4, 2, clicks_each=6)  # each participant clicks both images
    first = _stimulus_ids(app, sid)[0]
    svg = logged_in.get(f"/researcher/studies/cm/charts/heatmap/{first}.svg").get_data(as_text=True)
    assert "(4 trials)" in svg and "no clicks yet" not in svg


@pytest.mark.parametrize("task", ["realfake", "clickme"])
def test_study_page_shows_charts_and_gallery(app, logged_in, stimuli_dir, task):
    sid = create_demo_study(app, stimuli_dir(1, 2), slug="s", task=task)
    ids = _stimulus_ids(app, sid)
    page = logged_in.get("/researcher/studies/s").get_data(as_text=True)
    assert "/researcher/studies/s/charts/timeline.svg" in page
    assert ("/researcher/studies/s/charts/judgments.svg" in page) == (task == "realfake")
    assert ('id="heatmap"' in page) == (task == "clickme")
    if task == "clickme":
        for i in ids:
            assert f"/researcher/studies/s/charts/heatmap/{i}.svg" in page
    for i in ids:  # every stimulus in the gallery, with its metadata
        assert f'src="/api/v1/stimuli/{i}/image"' in page
    assert page.count("<dt>source</dt><dd>fake</dd>") == 2
    assert page.count("<dt>source</dt><dd>real</dd>") == 1
    assert "<dt>model</dt><dd>cfgdm</dd>" in page and "<dt>guidance</dt><dd>1.5</dd>" in page
    assert "the digit 0 (digit0)" in page
