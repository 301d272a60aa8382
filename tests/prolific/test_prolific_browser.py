"""The reconciliation page in headless Chromium (CSP and CSRF on), against the Prolific stand-in:
flagged rows, approving the complete submission, and the screenshot for docs/prolific.md."""

from __future__ import annotations

import pytest
from live_app import log_in, served, watch_csp
from prolific_helpers import TOKEN, answer, complete, make_app, make_study, start
from sqlalchemy import select
from stand_ins.prolific import serve

from study import db
from study.auth import create_researcher
from study.platforms import prolific_records
from study.tables import Study

pytestmark = pytest.mark.browser


def test_reconciliation_page_flags_and_approves(tmp_path, docs_figure, browser):
    prolific, stand_in = serve(TOKEN, page_size=3)
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True, PROLIFIC_API_TOKEN=TOKEN,
                   PROLIFIC_API_URL=f"{prolific.url}/api/v1/")
    make_study(app)
    client = app.test_client()
    for pid, n in (("5f3a9c21e4b0a1c2d3e4f501", None), ("5f3a9c21e4b0a1c2d3e4f502", None),
                   ("5f3a9c21e4b0a1c2d3e4f503", 2), ("5f3a9c21e4b0a1c2d3e4f509", None)):
        token = start(client, "rf", pid, f"S{pid[-3:]}")
        answer(client, app, token, n)
        if n is None:
            complete(client, token)
    sid = prolific.add_study("Real or AI-made?", [("DONE01", "COMPLETED")])
    statuses = {"501": "AWAITING REVIEW", "502": "APPROVED", "503": "APPROVED",
                "504": "APPROVED", "505": "RETURNED"}
    subs = {k: prolific.add_submission(sid, f"5f3a9c21e4b0a1c2d3e4f{k}", v) for k, v in statuses.items()}
    with app.app_context():
        create_researcher(db.session(), "ada@example.org", "correct horse battery")
        db.session().commit()
        prolific_records.link(db.session(), db.session().scalar(select(Study)), sid)
    try:
        with served(app) as url:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            csp = watch_csp(page)
            log_in(page, url, "/researcher/studies/rf/prolific", "ada@example.org", "correct horse battery")
            assert page.inner_text("#prolific-summary").startswith("6 participant(s): 3 flagged")
            flagged = page.locator("tr.flagged").evaluate_all("rows => rows.map(r => r.dataset.pid)")
            assert sorted(pid[-3:] for pid in flagged) == ["503", "504", "509"]
            page.screenshot(path=str(docs_figure("researcher/reconciliation.png")), full_page=True)
            page.click("#approve")
            page.wait_for_selector("text=Approved 1 submission(s).")
            assert prolific.submissions[subs["501"]]["status"] == "APPROVED"
            assert page.is_disabled("#approve")  # nothing left awaiting review
            page.close()
    finally:
        stand_in.shutdown()
        stand_in.server_close()
    assert csp == []
