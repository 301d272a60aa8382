"""The study builder in headless Chromium (CSP on): a study made with the builder form (an
out-of-range setting first, shown next to its field), a participant run through it, and the
participant's design hash found in the export. Takes docs/figures/researcher/builder.png (written there with DP_DOCS_FIGURES=1)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from live_app import log_in, served, watch_csp
from researcher_helpers import EMAIL, PASSWORD, manifest_rows, write_manifest_csv
from sqlalchemy import select

from study import create_app, db
from study.auth import create_researcher
from study.migrate import upgrade
from study.tables import Study

pytestmark = pytest.mark.browser


def _bundle(tmp_path: Path) -> Path:
    rows = manifest_rows(tmp_path / "src", 2, 2)
    write_manifest_csv(tmp_path / "src", rows)
    bundle = tmp_path / "stimuli.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        for name in ["manifest.csv"] + [r["path"] for r in rows]:
            zf.write(tmp_path / "src" / name, name)
    return bundle


def _fill_builder(page, bundle: Path, exposure: str) -> None:
    page.set_input_files("input[name=manifest]", str(bundle))
    page.fill("input[name=title]", "Digits: real or fake")
    page.fill("input[name=slug]", "built")
    page.select_option("select[name=task]", "realfake")
    page.fill("input[name='settings.exposure_ms']", exposure)
    page.fill("input[name='settings.fixation_ms']", "100")
    page.fill("input[name='settings.mask_ms']", "50")
    page.fill("input[name='settings.trials_per_participant']", "2")
    page.fill("input[name='settings.n_practice']", "0")
    page.fill("input[name='settings.n_catch']", "0")
    page.check("input[name=live]")
    page.click("text=Create study")


def _participant(browser, url: str) -> str:
    """Run one participant through the study with the F key; returns the completion code."""
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{url}/s/built?PROLIFIC_PID=B1&STUDY_ID=ST&SESSION_ID=SE")
    page.click("#agree")
    page.wait_for_url("**/s/built/task")
    page.locator("#begin").click()
    for _ in range(200):
        if page.locator("#debrief-done").is_visible():
            code = page.locator("#completion-code").inner_text()
            context.close()
            return code
        if page.locator(".rf-answer").is_visible():
            page.keyboard.press("f")
        elif page.locator("#interlude-next").is_visible():
            page.locator("#interlude-next").click()
        page.wait_for_timeout(100)
    raise AssertionError("the participant never reached the debrief")


def test_builder_study_runs_and_exports_the_design_hash(tmp_path: Path, docs_figure, browser) -> None:
    from playwright.sync_api import expect

    database = f"sqlite:///{tmp_path / 'study.db'}"
    upgrade(database)
    app = create_app({"DATABASE_URL": database, "SECRET_KEY": "builder-test",
                      "STIMULI_ROOT": str(tmp_path / "store"), "FEEDBACK_CLASSIFIER": None})
    with app.app_context():
        create_researcher(db.session(), EMAIL, PASSWORD)
        db.session().commit()
    bundle = _bundle(tmp_path)
    with served(app) as url:
        context = browser.new_context(viewport={"width": 1000, "height": 700})
        page = context.new_page()
        page.set_default_timeout(15_000)
        csp_errors = watch_csp(page)
        log_in(page, url, "/researcher/studies/new", EMAIL, PASSWORD)

        _fill_builder(page, bundle, exposure="5")  # below the 10 ms minimum
        field = page.locator("[data-setting=exposure_ms]")
        expect(field.locator(".field-error")).to_have_text("must be >= 10, got 5")
        field.scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -120)")
        page.screenshot(path=str(docs_figure("researcher/builder.png")))

        _fill_builder(page, bundle, exposure="100")
        page.wait_for_url(url + "/researcher/studies/built")
        assert page.inner_text("#study-status") == "live"
        page.click("#settings-link")
        design_hash = page.inner_text("#current-design")
        assert len(design_hash) == 64

        with app.app_context():
            study = db.session().scalar(select(Study).where(Study.slug == "built"))
            assert study.settings["exposure_ms"] == 100
            expected_code = study.completion_code
        assert _participant(browser, url) == expected_code

        reply = context.request.get(url + "/researcher/studies/built/export/trials.csv?raw=1")
        assert reply.ok
        rows = list(csv.DictReader(io.StringIO(reply.text())))
        assert [(r["participant"], r["design_hash"]) for r in rows] == [("B1", design_hash)] * 2
        context.close()
    assert csp_errors == []
