"""The study page's charts in headless Chromium (CSP on), filled by simulated participants over
HTTP: heat maps paged through, charts redrawn while a study runs, and the screenshots of
docs/researchers.md (docs/figures/researcher/dashboard*.png, written there with DP_DOCS_FIGURES=1)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from live_app import log_in, served, watch_csp
from PIL import Image, ImageDraw
from researcher_helpers import (
    EMAIL,
    PASSWORD,
    create_demo_study,
    make_app,
    manifest_rows,
    write_manifest_csv,
)
from sqlalchemy import select

from study import db, simulated_participants
from study.auth import create_researcher
from study.tables import Stimulus, Study

pytestmark = pytest.mark.browser

SHAPES = {  # ClickMe stimuli: white ink on black, 64 px, each with its class in words
    "ring": ("a ring", lambda d: d.ellipse((12, 12, 52, 52), outline=255, width=7)),
    "bar": ("a bar", lambda d: d.rectangle((26, 6, 38, 58), fill=255)),
    "corner": ("a corner", lambda d: (d.rectangle((8, 8, 20, 56), fill=255),
                                      d.rectangle((8, 44, 56, 56), fill=255))),
}


def _clickme_manifest(folder: Path) -> Path:
    rows = []
    for i, (label, (text, draw)) in enumerate(SHAPES.items()):
        img = Image.new("L", (64, 64), 0)
        draw(ImageDraw.Draw(img))
        path = folder / f"img/{label}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        rows.append({"stimulus_id": f"shape-{label}", "path": f"img/{label}.png",
                     "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "source": "real",
                     "class_label": label, "class_text": text, "exemplar_id": "", "model": "",
                     "dataset": "shapes", "split": "heldout", "role": "main", "width": "64",
                     "height": "64", "guidance": "", "sampler": "", "steps": "", "seed": "",
                     "checkpoint": ""})
        assert i < 3
    return write_manifest_csv(folder, rows)


def _realfake_manifest(folder: Path) -> Path:
    rows = manifest_rows(folder, 4, 4)
    fakes = [r for r in rows if r["source"] == "model"]
    for i, row in enumerate(fakes):  # two guidance scales, two images each
        row["guidance"] = "1.0" if i % 2 else "3.0"
    return write_manifest_csv(folder, rows)


def _simulate(app, url: str, slug: str, **config) -> None:
    with app.app_context():
        sid = db.session().scalar(select(Study.id).where(Study.slug == slug))
        truth = simulated_participants.truth_from_db(db.session(), sid, app.config["STIMULI_ROOT"])
    cfg = simulated_participants.SimulationConfig(concurrency=3, **config)
    result = simulated_participants.run_simulation(url, slug, cfg, truth)
    assert result.errors == 0, result.error_messages


def _loaded(page, selector: str) -> None:
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector, timeout=15000)


def test_study_pages_show_charts_heat_maps_and_gallery(tmp_path, docs_figure, browser):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    with app.app_context():
        create_researcher(db.session(), EMAIL, PASSWORD)
        db.session().commit()
    cm = create_demo_study(app, _clickme_manifest(tmp_path / "cm"), slug="shapes-clickme",
                           task="clickme", trials_per_participant=3, min_clicks=5,
                           click_budget=40)
    create_demo_study(app, _realfake_manifest(tmp_path / "rf"), slug="digits-rf",
                      trials_per_participant=8)
    with app.app_context():
        heat_ids = list(db.session().scalars(select(Stimulus.id).where(Stimulus.study_id == cm)
                                             .order_by(Stimulus.id)))
    with served(app) as url:
        _simulate(app, url, "shapes-clickme", behaviour="clicker", n=5, seed=3,
                  clicks_per_trial=30)
        _simulate(app, url, "digits-rf", behaviour="observer", n=6, dprime=1.5, seed=4)
        context = browser.new_context(viewport={"width": 1000, "height": 700})
        page = context.new_page()
        csp_errors = watch_csp(page)
        log_in(page, url, "/researcher/studies/shapes-clickme", EMAIL, PASSWORD)
        for selector in ("#chart-timeline", "#heatmap-img", "#gallery img"):
            _loaded(page, selector)
        assert page.inner_text("#heatmap-caption") == "1 of 3: shape-ring"
        assert page.locator("#gallery li").count() == 3
        page.locator("h2").evaluate("h => h.scrollIntoView()")
        page.screenshot(path=str(docs_figure("researcher/dashboard.png")))
        page.click("#heatmap-next")
        page.click("#heatmap-next")
        assert page.inner_text("#heatmap-caption") == "3 of 3: shape-corner"
        assert f"/heatmap/{heat_ids[2]}.svg" in page.get_attribute("#heatmap-img", "src")
        page.click("#heatmap-prev")
        assert page.inner_text("#heatmap-caption") == "2 of 3: shape-bar"
        _loaded(page, "#heatmap-img")

        page.goto(url + "/researcher/studies/digits-rf")
        for selector in ("#chart-timeline", "#chart-judgments"):
            _loaded(page, selector)
        page.locator("h2").evaluate("h => h.scrollIntoView()")
        page.screenshot(path=str(docs_figure("researcher/dashboard-realfake.png")))
        first_src = page.get_attribute("#chart-judgments", "src")
        _simulate(app, url, "digits-rf", behaviour="observer", n=2, dprime=1.5, seed=5)
        # the page's poll sees 8 participants and fetches each chart again
        page.wait_for_function(
            "() => document.getElementById('chart-judgments').src.includes('v=8-8-')",
            timeout=15000)
        assert page.get_attribute("#chart-judgments", "src") != first_src
        _loaded(page, "#chart-judgments")
        context.close()
    assert csp_errors == []
