"""The dashboard in headless Chromium: log in, upload a manifest, pause, live progress (CSP on)."""

from __future__ import annotations

import zipfile

import pytest
from live_app import log_in, served, watch_csp
from researcher_helpers import (
    EMAIL,
    PASSWORD,
    make_app,
    manifest_rows,
    populate,
    write_manifest_csv,
)
from sqlalchemy import select

from study import db
from study.auth import create_researcher
from study.tables import Study

pytestmark = pytest.mark.browser


def test_researcher_creates_pauses_and_watches_a_study(tmp_path, browser):
    from playwright.sync_api import expect

    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    with app.app_context():
        create_researcher(db.session(), EMAIL, PASSWORD)
        db.session().commit()
    rows = manifest_rows(tmp_path / "src", 2, 2)
    write_manifest_csv(tmp_path / "src", rows)
    bundle = tmp_path / "stimuli.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        for name in ["manifest.csv"] + [r["path"] for r in rows]:
            zf.write(tmp_path / "src" / name, name)
    with served(app) as url:
        context = browser.new_context()
        page = context.new_page()
        csp_errors = watch_csp(page)
        log_in(page, url, "/researcher/studies/new", EMAIL, PASSWORD)
        page.set_input_files("input[name=manifest]", str(bundle))
        page.fill("input[name=slug]", "web-rf")
        page.fill("textarea[name=settings]", '{"task": "realfake", "n_practice": 0, "n_catch": 0}')
        page.check("input[name=live]")
        page.click("text=Create study")
        page.wait_for_url(url + "/researcher/studies/web-rf")
        assert page.inner_text("#study-status") == "live"
        assert page.get_attribute("#preview-link", "href") == "/s/web-rf?preview=1"
        page.click("button:has-text('Pause')")
        page.wait_for_selector("text=Study web-rf is now paused.")
        with app.app_context():
            sid = db.session().scalar(select(Study.id).where(Study.slug == "web-rf"))
            assert db.session().get(Study, sid).status == "paused"
        assert page.inner_text("[data-k=responses]") == "0"
        populate(app, sid, 3, 4)  # the page's script polls and shows the new counts
        expect(page.locator("[data-k=responses]")).to_have_text("12", timeout=15000)
        assert page.inner_text("[data-k=started]") == "3"
        context.close()
    assert csp_errors == []
