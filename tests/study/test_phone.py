"""The participant pages on phones, in Chromium's phone emulation (touch, 360-430 px wide):
every visible control lies on the screen (ClickMe and real-or-fake), a finger drag paints a ClickMe stroke without
scrolling the page, and a phone on a study that allows no phones is screened out with a clear
page and nothing stored but the screen-out. Takes docs/figures/study/phone-clickme.png (written there with DP_DOCS_FIGURES=1)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from study_helpers import digit_manifest, manifest_study
from werkzeug.serving import make_server

from study import create_app
from study.migrate import upgrade
from study.tables import Participant, Response, Trial

pytestmark = pytest.mark.browser
TIMEOUT_MS = 15_000
ANDROID_PHONE = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/124.0.0.0 Mobile Safari/537.36")

# Every visible control and text box whose box leaves the viewport (or that makes the page
# wider than the viewport): [description, left, right] per offender.
OFFSCREEN_JS = """() => {
  const w = window.innerWidth;
  const out = [];
  if (document.documentElement.scrollWidth > w) out.push(["page", 0, document.documentElement.scrollWidth]);
  for (const e of document.querySelectorAll("button, a, canvas, input, p, h1, h2, li, span")) {
    const r = e.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(e).visibility === "hidden") continue;
    if (r.left < -0.5 || r.right > w + 0.5) {
      out.push([`${e.tagName}.${e.className}: ${(e.textContent || "").slice(0, 30)}`, r.left, r.right]);
    }
  }
  return out;
}"""



@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Flask, Path]]:
    """One app on a SQLite file for the module, served by werkzeug on a free port."""
    tmp = tmp_path_factory.mktemp("phone")
    url = f"sqlite:///{tmp / 'study.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "phone-test",
                      "STIMULI_ROOT": str(tmp / "stimuli"), "FEEDBACK_CLASSIFIER": None})
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", app, tmp
    srv.shutdown()
    thread.join(5)
    app.extensions["sqlalchemy_engine"].dispose()


@pytest.fixture(scope="module")
def manifest(server) -> Path:
    return digit_manifest(server[2] / "stimuli", classes=("digit4",), per_class=1, practice=0)


def phone(browser, width: int):
    """A page in Chromium's phone emulation: touch, mobile viewport, a phone's user agent."""
    context = browser.new_context(viewport={"width": width, "height": 844}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2, user_agent=ANDROID_PHONE)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def touch_drag(page, points: list[tuple[float, float]]) -> None:
    """A one-finger drag through `points` (CSS px), as the touch screen sends it: a move every
    frame, and the finger at rest before it lifts (as when a stroke is done: no fling)."""
    cdp = page.context.new_cdp_session(page)

    def send(kind: str, at: list[tuple[float, float]]) -> None:
        cdp.send("Input.dispatchTouchEvent",
                 {"type": kind, "touchPoints": [{"x": x, "y": y} for x, y in at]})

    send("touchStart", points[:1])
    for point in points[1:]:
        page.wait_for_timeout(16)
        send("touchMove", [point])
    page.wait_for_timeout(150)
    send("touchMove", points[-1:])
    send("touchEnd", [])
    cdp.detach()


def assert_on_screen(page, where: str) -> None:
    off = page.evaluate(OFFSCREEN_JS)
    assert not off, f"{where} at {page.viewport_size['width']} px: {off}"


@pytest.mark.parametrize("width", [360, 430, 390])
def test_clickme_on_a_phone(server, manifest, browser, width: int, docs_figure) -> None:
    base, app, _ = server
    slug = manifest_study(app, manifest, {
        "task": "clickme", "title": "Which parts matter?", "completion_code": "C0DE42",
        "trials_per_participant": 1, "n_practice": 0, "n_catch": 0, "min_clicks": 3,
        "click_budget": 60}, f"cm-phone-{width}")
    context, page, errors = phone(browser, width)
    try:
        page.goto(f"{base}/s/{slug}?PROLIFIC_PID=PH{width}&SESSION_ID=SE")
        assert_on_screen(page, "consent")
        page.locator("#agree").tap()
        page.wait_for_url(f"**/s/{slug}/task")
        page.locator("#begin").wait_for(state="visible")
        assert_on_screen(page, "instructions")
        page.locator("#begin").tap()
        page.locator('#stage[data-trial-index="0"] .cm-canvas').wait_for(state="visible")
        assert_on_screen(page, "ClickMe trial")
        assert page.locator(".cm-undo").inner_text() == "Undo"  # no keyboard hints on touch
        box = page.locator(".cm-canvas").bounding_box()
        scrolled = page.evaluate("window.scrollY")
        touch_drag(page, [(box["x"] + box["width"] * f, box["y"] + box["height"] * 0.5)
                          for f in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)])
        page.locator(".cm-count").wait_for(state="visible")
        count = page.locator(".cm-count").inner_text()
        assert not count.startswith("0 placed"), count
        assert page.locator(".cm-submit").is_enabled(), count
        assert page.evaluate("window.scrollY") == scrolled  # painting did not scroll the page
        assert_on_screen(page, "ClickMe trial after painting")
        if width == 390:
            page.screenshot(path=str(docs_figure("study/phone-clickme.png")), scale="css")
        page.locator(".cm-submit").tap()
        page.locator("#debrief-done").wait_for(state="visible")
        assert page.locator("#completion-code").inner_text() == "C0DE42"
        assert_on_screen(page, "debrief")
    finally:
        context.close()
    assert not errors, errors
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        p = s.scalar(select(Participant).where(Participant.external_id == f"PH{width}"))
        (r,) = s.scalars(select(Response).where(Response.participant_id == p.id))
        clicks = r.clicks
        assert p.status == "completed" and len(clicks) >= 3
        # One stroke across the middle of the image, left to right.
        assert {c.stroke for c in clicks} == {0}
        assert all(abs(c.y - 0.5) < 0.02 for c in clicks)
        assert clicks[0].x < 0.25 and clicks[-1].x > 0.7


def test_realfake_on_a_small_phone(server, manifest, browser) -> None:
    base, app, _ = server
    slug = manifest_study(app, manifest, {
        "task": "realfake", "title": "Real or AI?", "completion_code": "C0DE42",
        "trials_per_participant": 1, "n_practice": 0, "n_catch": 0, "exposure_ms": 100,
        "fixation_ms": 50, "mask_ms": 50, "confidence": True}, "rf-phone")
    context, page, errors = phone(browser, 360)
    try:
        page.goto(f"{base}/s/{slug}?PROLIFIC_PID=RF360")
        page.locator("#agree").tap()
        page.locator("#begin").tap()
        page.locator(".rf-answer").wait_for(state="visible")
        assert page.locator('[data-answer="fake"]').inner_text() == "AI-generated"
        assert_on_screen(page, "real-or-fake answer")
        page.locator('[data-answer="fake"]').tap()
        page.locator(".rf-confidence").wait_for(state="visible")
        assert_on_screen(page, "confidence")
        page.locator('[data-confidence="3"]').tap()
        page.locator("#debrief-done").wait_for(state="visible")
    finally:
        context.close()
    assert not errors, errors
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        p = s.scalar(select(Participant).where(Participant.external_id == "RF360"))
        (r,) = s.scalars(select(Response).where(Response.participant_id == p.id))
        assert (r.answer, r.confidence, p.status) == ("fake", 3, "completed")


def test_a_phone_on_a_study_without_phones_is_screened_out(server, manifest, browser) -> None:
    base, app, _ = server
    slug = manifest_study(app, manifest, {
        "task": "clickme", "title": "Desktop only", "completion_code": "C0DE42",
        "screened_out_code": "SCR33N", "trials_per_participant": 1, "n_practice": 0,
        "n_catch": 0, "min_clicks": 3, "devices": {"phones": False}}, "cm-no-phones")
    context, page, errors = phone(browser, 390)
    try:
        page.goto(f"{base}/s/{slug}?PROLIFIC_PID=NOPHONE&SESSION_ID=SE")
        assert "a computer or tablet (not a phone)" in page.locator(".requirements").inner_text()
        page.locator("#agree").tap()
        page.locator("#screened-out").wait_for(state="visible")
        text = page.locator("#screened-out").inner_text()
        assert "This study needs a computer or tablet (not a phone); this device is a phone." in text
        assert page.locator("#screen-out-code").inner_text() == "SCR33N"
        assert page.locator("#return-link").get_attribute("href") == (
            "https://app.prolific.com/submissions/complete?cc=SCR33N")
        assert_on_screen(page, "screened-out page")
    finally:
        context.close()
    assert not errors, errors
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        p = s.scalar(select(Participant).where(Participant.external_id == "NOPHONE"))
        assert p.status == "screened_out" and p.n_trials == 0
        assert s.scalar(select(Trial.id).where(Trial.participant_id == p.id)) is None
        assert s.scalar(select(Response.id).where(Response.participant_id == p.id)) is None
