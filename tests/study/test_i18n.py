"""Participant text in the study's language: the German catalog translates every participant
string found in the sources (templates, Python, the scripts' t(...) calls), the committed .mo is
the compiled .po, German pages show no English text of the catalog, the researcher's consent and
instructions replace the built-in ones (escaped), and the scripts write German in Chromium.
Takes docs/figures/study/consent-de.png (written there with DP_DOCS_FIGURES=1)."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from study_helpers import build_study
from werkzeug.serving import make_server

from study import create_app, i18n
from study.migrate import upgrade
from study.settings import CONSENT_MAX_CHARS, SettingsError, StudySettings
from study.tables import Condition, Study

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "study" / "translations" / "de" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


def _source_messages() -> set[str | tuple[str, str]]:
    """Every message the sources pass to gettext or t(...), by babel.cfg (as pybabel extract)."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    keywords = {**DEFAULT_KEYWORDS, i18n.JS_KEYWORD: None}
    found = extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords,
        directory_filter=lambda path: os.path.relpath(path, ROOT).split(os.sep)[0] in (".", "study"),
    )
    return {msg if isinstance(msg, str) else tuple(msg[:2]) for _f, _l, msg, _c, _x in found}


@pytest.fixture(scope="module")
def german():
    with PO.open("rb") as fh:
        return read_po(fh)


def _forms(text) -> tuple[str, ...]:
    """A message's singular, or singular and plural, as a tuple."""
    return (text,) if isinstance(text, str) else tuple(text)


def _key(message) -> str | tuple[str, ...]:
    return message.id if isinstance(message.id, str) else _forms(message.id)


def test_every_participant_string_has_a_german_translation(german) -> None:
    wanted = _source_messages()
    assert {"I agree and want to take part", "Undo", "{placed} placed, {left} left",
            "This study needs %(need)s; this device is a phone."} <= wanted
    catalog = {_key(m): m for m in german if m.id}
    missing = sorted(map(str, wanted - set(catalog)))
    assert not missing, f"not in {PO.relative_to(ROOT)} (run pybabel extract/update): {missing}"
    for key in wanted:
        m = catalog[key]
        strings = [m.string] if isinstance(m.string, str) else list(m.string)
        assert all(strings) and not m.fuzzy, f"no German for {key!r}"
        sources = [m.id] if isinstance(m.id, str) else list(m.id)
        for i, said in enumerate(strings):  # the English form's placeholders, and no others
            english = sources[min(i, len(sources) - 1)]
            assert set(PLACEHOLDER.findall(said)) == set(PLACEHOLDER.findall(english)), key
    stale = sorted(map(str, set(catalog) - wanted))
    assert not stale, f"in the catalog but no longer in the sources: {stale}"


def test_the_committed_mo_is_the_compiled_po(german) -> None:
    with MO.open("rb") as fh:
        compiled = read_mo(fh)
    as_po = {_key(m): _forms(m.string) for m in german if m.id}
    as_mo = {_key(m): _forms(m.string) for m in compiled if m.id}
    assert as_mo == as_po, "run: pybabel compile -d study/translations"


def test_scripts_receive_the_translations_of_their_own_texts() -> None:
    texts = i18n.js_messages()
    assert "Undo" in texts and "Trial {n} of {total}" in texts
    assert "I agree and want to take part" not in texts  # a template's text, not a script's
    table = json.loads(i18n.js_strings("de"))
    assert set(table) == set(texts)
    assert table["Undo"] == "Rückgängig"
    assert table["{placed} placed, {left} left"] == "{placed} gesetzt, {left} übrig"
    assert json.loads(i18n.js_strings("en")) == {}


@pytest.mark.parametrize(("raw", "field"), [
    ({"language": "fr"}, "language"),
    ({"texts": {"consent": "   "}}, "texts.consent"),
    ({"texts": {"consent": "x" * (CONSENT_MAX_CHARS + 1)}}, "texts.consent"),
    ({"texts": {"instructions": 3}}, "texts.instructions"),
    ({"texts": {"debrief": "hi"}}, "texts.debrief"),
])
def test_language_and_text_settings_errors_name_the_field(raw: dict, field: str) -> None:
    with pytest.raises(SettingsError) as caught:
        StudySettings.from_dict(raw)
    assert caught.value.field == field


class _Visible(HTMLParser):
    """A page's text and the attributes people read (title, aria-label, alt)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.parts += [v for k, v in attrs if k in ("aria-label", "alt", "title") and v]

    def handle_data(self, data) -> None:
        self.parts.append(data)


def _visible(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def _english_on(page: str, german) -> list[str]:
    """The catalog's English texts (each singular and plural, placeholders as wildcards) that
    the page shows."""
    text = _visible(page)
    found = []
    for m in german:
        for english in ([m.id] if isinstance(m.id, str) else list(m.id)):
            if not english:
                continue
            parts = [re.escape(" ".join(p.split())) for p in PLACEHOLDER.split(english)]
            if re.search(r"(?<!\w)" + r".{1,80}?".join(parts) + r"(?!\w)", text):
                found.append(english)
    return found


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    tmp = tmp_path_factory.mktemp("i18n")
    url = f"sqlite:///{tmp / 'study.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "i18n-test", "TESTING": True,
                      "STIMULI_ROOT": str(tmp / "stimuli"), "FEEDBACK_CLASSIFIER": None})
    yield app
    app.extensions["sqlalchemy_engine"].dispose()


def _start(client, slug: str, pid: str, **headers) -> int:
    res = client.post(f"/api/v1/studies/{slug}/participants", headers=headers, json={
        "consent": True, "platform": "prolific", "PROLIFIC_PID": pid, "SESSION_ID": "SE"})
    return res.status_code


@pytest.mark.parametrize("task", ["realfake", "clickme"])
def test_german_pages_show_no_english_text(app: Flask, german, task: str) -> None:
    slug = build_study(app, task=task, n_main=2, n_practice=2, n_catch=0,
                       settings={"language": "de", "devices": {"phones": False}})
    client = app.test_client()
    consent = client.get(f"/s/{slug}?PROLIFIC_PID=DE1&SESSION_ID=SE")
    assert consent.status_code == 200 and '<html lang="de">' in consent.text
    assert "Ich stimme zu und möchte teilnehmen" in consent.text
    assert "einen Computer oder ein Tablet (kein Smartphone)" in consent.text
    assert _english_on(consent.text, german) == []

    assert _start(client, slug, "DE1") == 201
    page = client.get(f"/s/{slug}/task")
    assert page.status_code == 200 and "Die ersten 2 Durchgänge sind Übungen" in page.text
    assert _english_on(page.text, german) == []
    strings = json.loads(re.search(r'<body data-strings="([^"]*)"', page.text)[1]
                         .replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&"))
    assert strings["Submit"] == "Absenden"

    # A phone is screened out with the reasons in German (the API decided them).
    phone = app.test_client()
    assert _start(phone, slug, "DE2", **{"User-Agent": IPHONE}) == 403
    out = phone.get(f"/s/{slug}")
    assert out.status_code == 403 and "dieses Gerät ist ein Smartphone" in out.text
    assert _english_on(out.text, german) == []


def test_refusals_are_in_the_studys_language(app: Flask, german) -> None:
    closed = build_study(app, n_main=2, n_practice=0, n_catch=0, status="closed",
                         settings={"language": "de"})
    page = app.test_client().get(f"/s/{closed}")
    assert page.status_code == 410 and "Diese Studie ist geschlossen" in page.text
    assert _english_on(page.text, german) == []
    full = build_study(app, n_main=2, n_practice=0, n_catch=0,
                       settings={"language": "de", "max_participants": 1})
    assert _start(app.test_client(), full, "FULL1") == 201
    page = app.test_client().get(f"/s/{full}?PROLIFIC_PID=FULL2&SESSION_ID=SE")
    assert "Diese Studie ist voll" in page.text and _english_on(page.text, german) == []


def test_a_conditions_language_does_not_change_the_studys(app: Flask) -> None:
    slug = build_study(app, n_main=2, n_practice=1, n_catch=0, conditions=("A",),
                       settings={"language": "de"})
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        study = s.scalar(select(Study).where(Study.slug == slug))
        s.scalar(select(Condition).where(Condition.study_id == study.id)).settings = {
            "language": "en", "texts": {"instructions": "Nur für Bedingung A."}}
        s.commit()
    client = app.test_client()
    assert _start(client, slug, "CO1") == 201
    page = client.get(f"/s/{slug}/task").text
    assert '<html lang="de">' in page and "Nur für Bedingung A." in page


def test_an_english_study_stays_english(app: Flask, german) -> None:
    slug = build_study(app, n_main=2, n_practice=1, n_catch=0)
    page = app.test_client().get(f"/s/{slug}")
    assert '<html lang="en">' in page.text and "I agree and want to take part" in page.text
    assert "Einwilligung" not in page.text


def test_the_researchers_texts_replace_the_built_in_ones_escaped(app: Flask) -> None:
    consent = "Bitte lesen Sie dies.\nZweite Zeile <b>nicht fett</b> & mehr"
    slug = build_study(app, task="clickme", n_main=2, n_practice=0, n_catch=0, settings={
        "language": "de", "texts": {"consent": consent, "instructions": "Malen Sie <i>frei</i>."}})
    client = app.test_client()
    page = client.get(f"/s/{slug}?PROLIFIC_PID=TX1&SESSION_ID=SE").text
    assert "Bitte lesen Sie dies.\nZweite Zeile &lt;b&gt;nicht fett&lt;/b&gt; &amp; mehr" in page
    assert "<b>" not in page and "Sie sind eingeladen" not in page
    assert "Einwilligung" in page  # the page around the text is still German
    assert _start(client, slug, "TX1") == 201
    task = client.get(f"/s/{slug}/task").text
    assert "Malen Sie &lt;i&gt;frei&lt;/i&gt;." in task and "Sie sehen Zeichnungen" not in task


def test_an_edit_leaves_the_language_of_those_who_started_before_it(app: Flask) -> None:
    slug = build_study(app, n_main=2, n_practice=1, n_catch=0, settings={"language": "de"})
    before = app.test_client()
    assert _start(before, slug, "ED1") == 201
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        study = s.scalar(select(Study).where(Study.slug == slug))
        study.settings = {**study.settings, "language": "en"}
        s.commit()
    assert '<html lang="de">' in before.get(f"/s/{slug}/task").text
    after = app.test_client()
    assert '<html lang="en">' in after.get(f"/s/{slug}?PROLIFIC_PID=ED2&SESSION_ID=SE").text
    assert _start(after, slug, "ED2") == 201
    assert '<html lang="en">' in after.get(f"/s/{slug}/task").text


@pytest.fixture(scope="module")
def server(app: Flask) -> Iterator[str]:
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(5)



def _page(browser) -> tuple[object, list[str]]:
    """A desktop-sized page and the problems it meets: script errors, CSP refusals, failed
    requests (the favicon aside)."""
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text)
            if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    page.on("response", lambda res: problems.append(f"{res.status} {res.url}")
            if res.status >= 400 and not res.url.endswith("/favicon.ico") else None)
    return page, problems


@pytest.mark.browser
def test_german_realfake_study_in_chromium(app: Flask, server: str, browser, docs_figure) -> None:
    slug = build_study(app, n_main=1, n_practice=1, n_catch=0, settings={
        "language": "de", "exposure_ms": None, "devices": {"phones": False}})
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        s.execute(update(Study).where(Study.slug == slug)
                  .values(title="Echte Zeichnung oder KI-generiert?"))
        s.commit()
    page, problems = _page(browser)
    page.goto(f"{server}/s/{slug}?PROLIFIC_PID=CHR1&SESSION_ID=SE")
    assert page.locator("#agree").inner_text() == "Ich stimme zu und möchte teilnehmen"
    page.screenshot(path=str(docs_figure("study/consent-de.png")))
    page.locator("#agree").click()
    page.wait_for_url(f"**/s/{slug}/task")
    page.locator("#begin").click()
    assert page.locator("#progress").inner_text() == "Übung 1"
    page.locator('button[data-answer="real"]').wait_for(state="visible")
    assert page.locator('button[data-answer="fake"]').inner_text().startswith("KI-generiert")
    page.locator('button[data-answer="real"]').click()
    assert page.locator("#interlude-title").inner_text() in {"Richtig", "Nicht ganz"}
    said = page.locator("#interlude-text").inner_text()
    assert said.endswith("eine echte Zeichnung.") or said.endswith("KI-generiert."), said
    page.close()
    assert problems == []


@pytest.mark.browser
def test_german_clickme_study_in_chromium(app: Flask, server: str, browser) -> None:
    slug = build_study(app, task="clickme", n_main=1, n_practice=0, n_catch=0,
                       settings={"language": "de", "min_clicks": 2, "click_budget": 40})
    page, problems = _page(browser)
    page.goto(f"{server}/s/{slug}?PROLIFIC_PID=CHR2&SESSION_ID=SE")
    page.locator("#agree").click()
    page.wait_for_url(f"**/s/{slug}/task")
    page.locator("#begin").click()
    count = page.locator(".cm-count")
    count.wait_for(state="visible")
    assert count.inner_text() == "0 gesetzt, 40 übrig (mindestens 2 nötig)"
    assert page.locator(".cm-undo").inner_text().startswith("Rückgängig")
    assert page.locator(".cm-submit").inner_text().startswith("Absenden")
    assert page.locator(".cm-prompt").inner_text().startswith("Übermalen Sie die Teile")
    page.locator(".cm-canvas").click()
    assert count.inner_text() == "1 gesetzt, 39 übrig (mindestens 2 nötig)"
    assert page.locator("#progress").inner_text() == "Durchgang 1 von 1"
    page.close()
    assert problems == []
