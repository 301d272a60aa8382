"""Participants in headless Chromium (Debian's, driven by Playwright): a ClickMe study with mouse
clicks and a drag, a real-or-fake study with the F/J keys, a reload in the middle, and a network
drop of a few seconds. The database is counted afterwards: nothing lost, nothing twice."""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from study_helpers import build_study, digit_manifest, manifest_study
from werkzeug.serving import make_server

from study import create_app
from study.migrate import upgrade
from study.tables import BrowserEvent, Click, Participant, Response, Trial

pytestmark = pytest.mark.browser
TIMEOUT_MS = 15_000



@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Flask]]:
    """The app on a fresh SQLite file, served by werkzeug on 127.0.0.1 and a free port."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "browser-test",
                      "STIMULI_ROOT": str(tmp_path / "stimuli"), "FEEDBACK_CLASSIFIER": None})
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", app
    srv.shutdown()
    thread.join(5)
    app.extensions["sqlalchemy_engine"].dispose()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield pg
    context.close()
    # Failed requests during the network drop log errors in the console; anything else is a bug.
    real = [e for e in errors if "Failed to load resource" not in e and "Failed to fetch" not in e]
    assert not real, real


def db_rows(app: Flask, pid: str) -> tuple[Participant, list[Response], int, int]:
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        p = s.scalar(select(Participant).where(Participant.external_id == pid))
        responses = list(
            s.scalars(select(Response).where(Response.participant_id == p.id).order_by(Response.id))
        )
        n_clicks = s.scalar(
            select(func.count()).select_from(Click).join(Response).where(Response.participant_id == p.id)
        )
        n_events = s.scalar(
            select(func.count()).select_from(BrowserEvent).where(BrowserEvent.participant_id == p.id)
        )
        for r in responses:
            _ = r.clicks, r.trial.stimulus
        return p, responses, n_clicks, n_events


def consent_and_begin(page, base: str, slug: str, pid: str) -> None:
    page.goto(f"{base}/s/{slug}?PROLIFIC_PID={pid}&STUDY_ID=ST&SESSION_ID=SE")
    page.click("#agree")
    page.wait_for_url(f"**/s/{slug}/task")
    page.locator("#begin").click()


def wait_trial(page, index: int) -> str:
    """Wait until trial `index` is on the stage (clicking through interludes); returns 'stage'
    or 'debrief'."""
    for _ in range(100):
        if page.locator("#debrief").is_visible():
            return "debrief"
        if page.locator(f'#stage[data-trial-index="{index}"]').is_visible():
            return "stage"
        if page.locator("#interlude").is_visible():
            try:  # the interlude may give way to the stage between the check and the click
                page.locator("#interlude-next").click(timeout=2000)
            except PlaywrightTimeoutError:
                pass
        page.wait_for_timeout(100)
    raise AssertionError(f"trial {index} never appeared")


def realfake_answer(page, index: int, key: str, confidence: str | None = None) -> None:
    assert wait_trial(page, index) == "stage"
    page.locator(".rf-answer").wait_for(state="visible")
    page.keyboard.press(key)
    if confidence:
        page.locator(".rf-confidence").wait_for(state="visible")
        page.keyboard.press(confidence)


def finish(page) -> str:
    """Click through to the debrief and return the completion code shown."""
    for _ in range(100):
        if page.locator("#debrief-done").is_visible():
            return page.locator("#completion-code").inner_text()
        if page.locator("#interlude").is_visible():
            try:  # the interlude may give way to the stage between the check and the click
                page.locator("#interlude-next").click(timeout=2000)
            except PlaywrightTimeoutError:
                pass
        page.wait_for_timeout(100)
    raise AssertionError("the debrief never showed a code")


def test_clickme_with_mouse_clicks_and_a_drag(server, page) -> None:
    base, app = server
    slug = build_study(app, task="clickme", n_main=2, n_practice=1, n_catch=0, image_size=16,
                       settings={"min_clicks": 3, "click_budget": 60, "bubble_radius": 0.05})
    consent_and_begin(page, base, slug, "CM1")
    for index in range(3):
        assert wait_trial(page, index) == "stage"
        canvas = page.locator(".cm-canvas")
        box = canvas.bounding_box()
        submit = page.locator(".cm-submit")
        page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3)
        page.mouse.click(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.6)
        assert submit.is_disabled()  # min_clicks is 3
        # A drag paints a stroke: several points sharing one stroke number.
        page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.8)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.8, steps=12)
        page.mouse.up()
        if index == 0:
            # Undo removes the whole drag, then paint it again.
            before = page.locator(".cm-count").inner_text()
            page.locator(".cm-undo").click()
            assert page.locator(".cm-count").inner_text().startswith("2 placed")
            assert before != page.locator(".cm-count").inner_text()
            page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.8)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.8, steps=12)
            page.mouse.up()
        if index == 1:
            page.set_viewport_size({"width": 900, "height": 760})  # a resize event
        if index == 2:
            # Keyboard only: move the cursor right twice and down once, paint, submit with Enter.
            for key in ("ArrowRight", "ArrowRight", "ArrowDown", " "):
                page.keyboard.press(key)
            page.keyboard.press("Enter")
        else:
            submit.click()
    code = finish(page)
    assert code == "C0DE42"
    assert page.locator("#return-link").get_attribute("href") == (
        "https://app.prolific.com/submissions/complete?cc=C0DE42"
    )
    p, responses, n_clicks, n_events = db_rows(app, "CM1")
    assert p.status == "completed" and len(responses) == 3
    assert len({r.trial_id for r in responses}) == 3
    keyed = responses[2].clicks[-1]
    assert keyed.stroke == 3 and abs(keyed.x - 0.56) < 1e-6 and abs(keyed.y - 0.53) < 1e-6
    for r in responses:
        strokes = [c.stroke for c in r.clicks if c.stroke < 3]
        assert strokes[:2] == [0, 1] and set(strokes[2:]) == {2} and len(strokes) >= 6
        first, second = r.clicks[0], r.clicks[1]
        assert abs(first.x - 0.2) < 0.02 and abs(first.y - 0.3) < 0.02
        assert abs(second.x - 0.7) < 0.02 and abs(second.y - 0.6) < 0.02
        assert all(0 <= c.x <= 1 and 0 <= c.y <= 1 for c in r.clicks)
        ts = [c.t_ms for c in r.clicks]
        assert ts == sorted(ts) and r.rt_ms >= ts[-1]
        assert r.n_clicks == len(r.clicks)
    assert n_clicks == sum(r.n_clicks for r in responses)
    assert n_events >= 1  # the resize


def test_realfake_with_keys_and_confidence(server, page) -> None:
    base, app = server
    slug = build_study(app, task="realfake", n_main=3, n_practice=1, n_catch=1,
                       settings={"exposure_ms": 100, "confidence": {"enabled": True, "min": 1, "max": 4}})
    consent_and_begin(page, base, slug, "RF1")
    keys = ["f", "j", "j", "f", "j"]
    for index, key in enumerate(keys):
        realfake_answer(page, index, key, confidence=str(1 + index % 4))
        if index == 0:  # practice: told whether it was right
            page.locator("#interlude").wait_for(state="visible")
            assert page.locator("#interlude-title").inner_text() in {"Correct", "Not quite"}
    assert finish(page) == "C0DE42"
    p, responses, _, _ = db_rows(app, "RF1")
    assert len(responses) == 5 and p.status == "completed"
    assert [r.answer for r in responses] == ["real" if k == "f" else "fake" for k in keys]
    assert [r.confidence for r in responses] == [1, 2, 3, 4, 1]
    for r in responses:
        assert 0 < r.rt_ms < 60_000
        # Shown for about 100 ms, measured on display frames (headless frames are coarse).
        assert 60 <= r.exposure_ms <= 400, r.exposure_ms
        assert r.correct == (r.answer == ("fake" if r.trial.stimulus.source == "model" else "real"))


def test_reload_in_the_middle_resumes(server, page) -> None:
    base, app = server
    slug = build_study(app, task="realfake", n_main=4, n_practice=0, n_catch=0)
    consent_and_begin(page, base, slug, "RL1")
    realfake_answer(page, 0, "f")
    realfake_answer(page, 1, "j")
    wait_trial(page, 2)
    page.reload()
    # Straight back to trial 3 of 4: no consent, no instructions.
    assert wait_trial(page, 2) == "stage"
    assert page.locator("#instructions").is_hidden()
    assert page.locator("#progress").inner_text() == "Trial 3 of 4"
    realfake_answer(page, 2, "f")
    realfake_answer(page, 3, "j")
    assert finish(page) == "C0DE42"
    # Opening the study link again shows where the participant is, not a second start.
    page.goto(f"{base}/s/{slug}?PROLIFIC_PID=RL1")
    page.locator("#debrief-done").wait_for(state="visible")
    p, responses, _, _ = db_rows(app, "RL1")
    assert [r.answer for r in responses] == ["real", "fake", "real", "fake"]
    assert len({r.trial_id for r in responses}) == 4
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 1


def test_start_whose_reply_is_lost_resumes(server, page) -> None:
    """The server stores the start but the browser never sees the reply (nor its cookie): the
    retry carries the same start key and continues as the same participant, also after a reload."""
    base, app = server
    slug = build_study(app, task="realfake", n_main=2, n_practice=0, n_catch=0)
    cut = {"n": 0}

    def lose_first_reply(route) -> None:
        if cut["n"] == 0:
            cut["n"] += 1
            route.fetch()  # reaches the server, which stores the participant
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/v1/studies/*/participants", lose_first_reply)
    page.goto(f"{base}/s/{slug}?PROLIFIC_PID=LOSTREPLY")
    page.click("#agree")
    page.wait_for_url(f"**/s/{slug}/task")
    assert cut["n"] == 1
    # A reload of the study link in this browser resumes too (by the stored start key).
    page.context.clear_cookies()
    page.goto(f"{base}/s/{slug}?PROLIFIC_PID=LOSTREPLY")
    page.wait_for_url(f"**/s/{slug}/task")
    page.locator("#begin").click()
    realfake_answer(page, 0, "f")
    realfake_answer(page, 1, "j")
    assert finish(page) == "C0DE42"
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 1


def test_network_drop_loses_nothing_and_stores_nothing_twice(server, page) -> None:
    base, app = server
    slug = build_study(app, task="realfake", n_main=4, n_practice=0, n_catch=0)
    consent_and_begin(page, base, slug, "NET1")
    realfake_answer(page, 0, "f")
    assert wait_trial(page, 1) == "stage"
    page.locator(".rf-answer").wait_for(state="visible")
    page.context.set_offline(True)
    page.keyboard.press("j")  # answered while offline: kept in the outbox
    page.locator("#net").wait_for(state="visible")
    page.wait_for_timeout(3000)
    queued = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('dp-outbox'))"
                           ".map(k => JSON.parse(localStorage.getItem(k)).length)")
    assert sum(queued) >= 1
    p, responses, _, _ = db_rows(app, "NET1")
    assert len(responses) == 1  # the second answer has not reached the server yet
    page.context.set_offline(False)
    realfake_answer(page, 2, "f")
    realfake_answer(page, 3, "j")
    assert finish(page) == "C0DE42"
    left = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('dp-outbox'))"
                         ".map(k => JSON.parse(localStorage.getItem(k)).length)")
    assert sum(left) == 0
    p, responses, _, _ = db_rows(app, "NET1")
    assert [r.answer for r in responses] == ["real", "fake", "real", "fake"]
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        n_trials = s.scalar(select(func.count()).select_from(Trial).where(Trial.participant_id == p.id))
    assert len({r.trial_id for r in responses}) == n_trials == 4
    assert len({r.client_uuid for r in responses}) == 4


def test_researcher_preview_runs_the_flow_and_stores_nothing(server, page) -> None:
    base, app = server
    slug = build_study(app, task="realfake", n_main=2, n_practice=1, n_catch=0, status="draft")
    # A researcher's signed session cookie, as H2's login sets it.
    cookie = app.session_interface.get_signing_serializer(app).dumps({"researcher_id": 1})
    page.context.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie,
                               "url": base}])
    page.goto(f"{base}/s/{slug}?preview=1")
    assert page.locator(".preview-banner").is_visible()
    page.click("#agree")
    page.wait_for_url(f"**/s/{slug}/task?preview=1")
    page.locator("#begin").click()
    for index, key in enumerate(["f", "j", "f"]):
        realfake_answer(page, index, key)
    assert finish(page) == "C0DE42"
    assert page.locator("#return-link").is_hidden()  # a preview never sends anyone to Prolific
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        for model in (Participant, Trial, Response, BrowserEvent):
            assert s.scalar(select(func.count()).select_from(model)) == 0


class NoIds:
    """Fails when a participant's page shows or contains an internal id: the manifest's stimulus
    ids, class ids, model names, exemplar ids, file names, checksums and checkpoint paths, in
    the visible text, the HTML (the live DOM) or a JSON reply of the API."""

    def __init__(self, page, manifest: Path) -> None:
        with manifest.open() as fh:
            rows = list(csv.DictReader(fh))
        ids = {"ddpm", "cfgdm", "fsdm"}
        for r in rows:
            ids |= {r[c] for c in ("stimulus_id", "class_label", "model", "exemplar_id", "sha256", "path",
                                   "checkpoint")}
            ids |= {Path(r["path"]).name, Path(r["path"]).stem}
        self.ids = sorted(i for i in ids if i)
        self.page = page
        self.replies: list[str] = []
        self.pages = 0
        page.route("**/api/v1/**", self._record)

    def _record(self, route) -> None:
        response = route.fetch()
        if "json" in response.headers.get("content-type", ""):
            self.replies.append(response.text())
        route.fulfill(response=response)

    def check(self, where: str) -> None:
        html = self.page.content()
        text = self.page.locator("body").inner_text()
        found = [i for i in self.ids if i in html or i in text]
        assert not found, f"{where}: {found}"
        self.pages += 1

    def check_replies(self) -> None:
        found = {i for reply in self.replies for i in self.ids if i in reply}
        assert not found, found
        assert self.replies


def walk(page, leaks: NoIds, base: str, slug: str, pid: str, answer) -> list[str]:
    """Consent, instructions, every trial (and interlude), debrief: checked at each step.
    `answer(page, index)` does one trial. Returns the ClickMe prompts seen."""
    page.goto(f"{base}/s/{slug}?PROLIFIC_PID={pid}&STUDY_ID=ST&SESSION_ID=SE")
    leaks.check("consent")
    page.click("#agree")
    page.wait_for_url(f"**/s/{slug}/task")
    page.locator("#instructions").wait_for(state="visible")
    leaks.check("instructions")
    page.locator("#begin").click()
    prompts, index = [], 0
    for _ in range(400):
        if page.locator("#debrief-done").is_visible():
            leaks.check("debrief")
            return prompts
        if page.locator("#interlude").is_visible():
            leaks.check(f"interlude before trial {index}")
            page.locator("#interlude-next").click()
        elif page.locator(f'#stage[data-trial-index="{index}"]').is_visible():
            if page.locator(".cm-prompt").count():
                prompts.append(page.locator(".cm-prompt").inner_text())
            answer(page, index)
            leaks.check(f"trial {index}")
            index += 1
        page.wait_for_timeout(50)
    raise AssertionError(f"stuck before trial {index}")


def test_participants_see_words_and_drawings_never_ids(server, page, tmp_path) -> None:
    """Both tasks on stimuli named as the sampler names them (`digit4_rot270`,
    `cfgdm-w1.0-c000-e0-s0`, `images/real-digits-digit7_flip-0010.png`): the ClickMe prompt
    says the class in words, the images arrive smoothly rendered, and no page, at any step,
    shows or contains an internal id."""
    pytest.importorskip("torch")
    base, app = server
    manifest = digit_manifest(tmp_path / "stimuli", per_class=3, practice=1, catch=1)
    leaks = NoIds(page, manifest)
    cm = manifest_study(app, manifest, {"task": "clickme", "title": "Which parts matter?", "completion_code": "C0DE42",
                                        "trials_per_participant": 3, "n_practice": 1, "n_catch": 0,
                                        "min_clicks": 3, "click_budget": 30}, "cm-words")

    def paint(page, index: int) -> None:
        canvas = page.locator(".cm-canvas")
        assert "pixelated" not in (canvas.get_attribute("class") or "")
        box = canvas.bounding_box()
        for fx, fy in ((0.3, 0.3), (0.5, 0.5), (0.7, 0.6)):
            page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        page.locator(".cm-submit").click()

    prompts = walk(page, leaks, base, cm, "WORDS1", paint)
    texts = {"the digit 4, rotated a quarter turn to the right", "the digit 7, mirrored left to right"}
    assert len(prompts) == 4
    for prompt in prompts:
        assert prompt.startswith("Paint over the parts of the drawing that tell you what it is: ")
        assert prompt.split(": ", 1)[1] in texts

    rf = manifest_study(app, manifest, {"task": "realfake", "title": "Real or AI?", "completion_code": "C0DE42",
                                        "trials_per_participant": 3, "n_practice": 1, "n_catch": 1,
                                        "exposure_ms": 300, "fixation_ms": 50, "mask_ms": 50}, "rf-words")
    natural = []

    def judge(page, index: int) -> None:
        page.locator(".rf-answer").wait_for(state="visible")
        image = page.locator(".rf-image")
        natural.append(image.evaluate("i => [i.naturalWidth, i.className]"))
        page.keyboard.press("f" if index % 2 else "j")

    assert walk(page, leaks, base, rf, "WORDS2", judge) == []
    assert natural == [[512, "rf-image"]] * 5  # the 16-px drawings arrive rendered at 512 px
    leaks.check_replies()
    assert leaks.pages >= 2 * 4 + 4 + 5 and len(leaks.ids) > 40
    for pid, n in (("WORDS1", 4), ("WORDS2", 5)):
        p, responses, _, _ = db_rows(app, pid)
        assert p.status == "completed" and len(responses) == n
