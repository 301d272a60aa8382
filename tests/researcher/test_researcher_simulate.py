"""Simulated participants through the real HTTP API of a running server (werkzeug, threaded)."""

from __future__ import annotations

import random
import threading
from statistics import NormalDist

import numpy as np
import pytest
from researcher_helpers import create_demo_study, make_app
from sqlalchemy import func, select
from werkzeug.serving import make_server

from study import db, simulated_participants
from study.tables import Click, Participant, Response, Study, Trial


class LiveServer:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)


def _truth(app, slug):
    with app.app_context():
        sid = db.session().scalar(select(Study.id).where(Study.slug == slug))
        return sid, simulated_participants.truth_from_db(db.session(), sid, app.config["STIMULI_ROOT"])


def _counts(app, sid):
    with app.app_context():
        s = db.session()
        n_resp = s.scalar(select(func.count()).select_from(Response).join(Participant).where(Participant.study_id == sid))
        n_uuid = s.scalar(select(func.count(func.distinct(Response.client_uuid))).join(Participant).where(Participant.study_id == sid))
        uuids = set(s.scalars(select(Response.client_uuid).join(Participant).where(Participant.study_id == sid)))
        statuses = dict(s.execute(select(Participant.status, func.count()).where(Participant.study_id == sid).group_by(Participant.status)).all())
    return n_resp, n_uuid, uuids, statuses


def test_accurate_participants_finish_and_every_response_is_stored_once(app, stimuli_dir):
    create_demo_study(app, stimuli_dir(3, 3, catch=1), trials_per_participant=6, n_practice=1, n_catch=1,
                      conditions=["a", "b"])
    sid, truth = _truth(app, "demo")
    with LiveServer(app) as live:
        cfg = simulated_participants.SimulationConfig(behaviour="accurate", n=8, concurrency=4, seed=1)
        result = simulated_participants.run_simulation(live.url, "demo", cfg, truth)
    assert result.errors == 0, result.error_messages
    assert (result.started, result.completed) == (8, 8)
    assert result.sent == result.confirmed == 8 * 8  # 1 practice + 6 main + 1 catch each
    n_resp, n_uuid, uuids, statuses = _counts(app, sid)
    assert n_resp == n_uuid == 64 and uuids == set(result.confirmed_uuids)
    assert statuses == {"completed": 8}
    with app.app_context():
        wrong = db.session().scalar(select(func.count()).select_from(Response).where(Response.correct.is_(False)))
    assert wrong == 0  # accurate really is accurate: the truth table matched every image


def test_simulated_participants_pass_a_window_minimum(app, stimuli_dir):
    """They report a desktop browser's window and screen, as the consent page does."""
    create_demo_study(app, stimuli_dir(2, 2), trials_per_participant=2,
                      devices={"phones": False, "min_viewport_width": 1024,
                               "min_screen_width": 1280, "min_screen_height": 720})
    sid, truth = _truth(app, "demo")
    with LiveServer(app) as live:
        cfg = simulated_participants.SimulationConfig(behaviour="accurate", n=2, concurrency=2, seed=1)
        result = simulated_participants.run_simulation(live.url, "demo", cfg, truth)
    assert result.errors == 0, result.error_messages
    assert _counts(app, sid)[3] == {"completed": 2}


def test_observer_gives_back_its_dprime(app, stimuli_dir):
    create_demo_study(app, stimuli_dir(4, 4), trials_per_participant=40)
    sid, truth = _truth(app, "demo")
    with LiveServer(app) as live:
        cfg = simulated_participants.SimulationConfig(behaviour="observer", n=10, concurrency=5, dprime=1.5, criterion=0.25, seed=3)
        result = simulated_participants.run_simulation(live.url, "demo", cfg, truth)
    assert result.errors == 0 and result.confirmed == 400
    with app.app_context():
        rows = db.session().execute(
            select(Response.answer, Trial.stimulus_id).join(Trial, Trial.id == Response.trial_id)
        ).all()
        from study.tables import Stimulus

        source = dict(db.session().execute(select(Stimulus.id, Stimulus.source)).all())
    fakes = [a for a, st in rows if source[st] == "model"]
    reals = [a for a, st in rows if source[st] == "real"]
    z = NormalDist().inv_cdf
    h = (sum(a == "fake" for a in fakes) + 0.5) / (len(fakes) + 1)
    f = (sum(a == "fake" for a in reals) + 0.5) / (len(reals) + 1)
    assert z(h) - z(f) == pytest.approx(1.5, abs=0.45)
    assert -(z(h) + z(f)) / 2 == pytest.approx(0.25, abs=0.25)


def test_clicker_draws_clicks_from_the_ink(app, stimuli_dir):
    create_demo_study(app, stimuli_dir(2, 0), task="clickme", trials_per_participant=4, min_clicks=5, click_budget=30)
    sid, truth = _truth(app, "demo")
    with LiveServer(app) as live:
        cfg = simulated_participants.SimulationConfig(behaviour="clicker", n=3, concurrency=3, clicks_per_trial=20)
        result = simulated_participants.run_simulation(live.url, "demo", cfg, truth)
    assert result.errors == 0 and result.completed == 3
    with app.app_context():
        s = db.session()
        points = s.execute(select(Click.x, Click.y, Trial.stimulus_id).join(Response, Response.id == Click.response_id)
                           .join(Trial, Trial.id == Response.trial_id)).all()
        from pathlib import Path

        from PIL import Image

        from study.tables import Stimulus

        files = {i: Path(app.config["STIMULI_ROOT"]) / p for i, p in s.execute(select(Stimulus.id, Stimulus.path))}
    assert len(points) == 3 * 4 * 20
    from study.display import render
    from study.settings import DisplaySettings

    on_ink = 0
    for x, y, stim in points:
        # the image as the participant was shown it (the study's default smooth display)
        img = np.asarray(render(Image.open(files[stim]), DisplaySettings()))
        assert img.shape == (512, 512)
        on_ink += img[int(y * img.shape[0]), int(x * img.shape[1])] > 127
    assert on_ink == len(points)  # every point landed on an ink pixel of its own image


def test_dropout_quits_midway_and_random_answers(app, stimuli_dir):
    create_demo_study(app, stimuli_dir(3, 3), trials_per_participant=5)
    sid, truth = _truth(app, "demo")
    with LiveServer(app) as live:
        cfg = simulated_participants.SimulationConfig(behaviour="dropout", n=10, concurrency=5, dropout_rate=0.5, seed=11)
        result = simulated_participants.run_simulation(live.url, "demo", cfg, truth)
    assert result.errors == 0
    assert result.dropped + result.completed == 10 and 0 < result.dropped < 10
    n_resp, _, uuids, statuses = _counts(app, sid)
    assert n_resp == result.confirmed < 50 and uuids == set(result.confirmed_uuids)
    assert statuses["started"] == result.dropped and statuses["completed"] == result.completed


def test_the_api_respects_pause_and_close(app, logged_in, stimuli_dir):
    create_demo_study(app, stimuli_dir(2, 2), trials_per_participant=3)
    sid, truth = _truth(app, "demo")
    with LiveServer(app) as live:
        logged_in.post("/researcher/studies/demo/status", data={"status": "paused"})
        paused = simulated_participants.run_simulation(live.url, "demo", simulated_participants.SimulationConfig(n=2, concurrency=2), truth)
        assert paused.started == 0 and paused.errors == 2
        assert "HTTP 410" in paused.error_messages[0] and "paused" in paused.error_messages[0]
        logged_in.post("/researcher/studies/demo/status", data={"status": "live"})
        resumed = simulated_participants.run_simulation(live.url, "demo", simulated_participants.SimulationConfig(n=2, concurrency=2), truth)
        assert resumed.completed == 2 and resumed.errors == 0
        logged_in.post("/researcher/studies/demo/status", data={"status": "closed"})
        closed = simulated_participants.run_simulation(live.url, "demo", simulated_participants.SimulationConfig(n=1), truth)
        assert closed.started == 0 and "closed" in closed.error_messages[0]


def test_config_errors_name_the_field():
    for kw, field in [({"behaviour": "lazy"}, "behaviour"), ({"n": 0}, "n"), ({"dropout_rate": 2}, "dropout_rate")]:
        with pytest.raises(ValueError, match=field):
            simulated_participants.SimulationConfig(**kw).check()


def test_importance_clicks_follow_the_map():
    ink = np.zeros((4, 4))
    ink[1, 2] = 1.0
    clicks = simulated_participants.importance_clicks(ink, 50, random.Random(0))
    assert all(int(c["x"] * 4) == 2 and int(c["y"] * 4) == 1 for c in clicks)
    assert [c["t"] for c in clicks] == sorted(c["t"] for c in clicks)


@pytest.mark.postgres
def test_simulation_on_postgres(postgres_url, tmp_path, stimuli_dir):
    from researcher_helpers import fresh_postgres_database

    with fresh_postgres_database(postgres_url) as url:
        app = make_app(tmp_path, database_url=url)
        create_demo_study(app, stimuli_dir(3, 3), trials_per_participant=5)
        sid, truth = _truth(app, "demo")
        with LiveServer(app) as live:
            result = simulated_participants.run_simulation(live.url, "demo", simulated_participants.SimulationConfig(behaviour="random", n=12, concurrency=6), truth)
        n_resp, n_uuid, uuids, statuses = _counts(app, sid)
        app.extensions["sqlalchemy_engine"].dispose()
    assert result.errors == 0 and result.completed == 12
    assert n_resp == n_uuid == result.confirmed == 60 and uuids == set(result.confirmed_uuids)


def test_cli_simulate_prints_the_counts(app, stimuli_dir):
    import json

    create_demo_study(app, stimuli_dir(2, 2), trials_per_participant=3)
    sid, _ = _truth(app, "demo")
    with LiveServer(app) as live:
        result = app.test_cli_runner().invoke(
            args=["simulate", "demo", "--url", live.url, "-n", "4", "--behaviour", "accurate", "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["completed"], summary["sent"], summary["confirmed"], summary["errors"]) == (4, 12, 12, 0)
    assert _counts(app, sid)[0] == 12
