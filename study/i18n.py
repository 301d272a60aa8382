"""Participant text in the study's language: gettext catalogs (study/translations) through
Flask-Babel for templates and Python messages, and the same catalogs for the texts the browser
writes (study/static/js), which the page receives as JSON in `<body data-strings>`.

A participant view calls `use(language)` with its study's `language` setting; the researcher's
pages and the API's messages stay in English (apart from a device screen-out's reasons, which
the start writes in the study's language for the screened-out page). The JavaScript calls `t("English text", {n: 1})`:
the English text is the key and the fallback, `{name}` a placeholder. The keys sent to a page
are read from the JS files themselves with Babel's JavaScript extractor (once per process), so
a string added to the JS needs no list kept by hand here.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from babel.messages.extract import extract
from babel.support import Translations
from flask import Flask, g
from flask_babel import Babel

from study.settings import LANGUAGES

DEFAULT = "en"
TRANSLATIONS = Path(__file__).parent / "translations"
JS_DIR = Path(__file__).parent / "static" / "js"
# The lookup function of study/static/js/i18n.js (`pybabel extract -k t`, docs/contributing.md).
JS_KEYWORD = "t"


def init_app(app: Flask) -> None:
    """Register Flask-Babel with the catalogs under study/translations; the locale is the one a
    participant view chose with `use` (English elsewhere)."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    Babel(app, locale_selector=current)


def use(language: str) -> None:
    """Render this request's participant pages in `language` (one of LANGUAGES)."""
    if language not in LANGUAGES:
        raise ValueError(f"language: {language!r} is not one of {', '.join(LANGUAGES)}")
    g.participant_language = language


def current() -> str:
    """The language of this request: the participant view's choice, else English."""
    return g.get("participant_language", DEFAULT)


@functools.cache
def js_messages() -> tuple[str, ...]:
    """Every text the participant scripts pass to `t(...)`, in file order, without repeats."""
    seen: dict[str, None] = {}
    for path in sorted(JS_DIR.glob("*.js")):
        with path.open("rb") as fh:
            for _line, message, _comments, _context in extract(
                "javascript", fh, keywords={JS_KEYWORD: None}, comment_tags=()
            ):
                if isinstance(message, str):
                    seen.setdefault(message, None)
    return tuple(seen)


@functools.cache
def catalog(language: str) -> Translations:
    """The compiled catalog of `language` (an empty one for English, the source language)."""
    return Translations.load(str(TRANSLATIONS), [language])


@functools.cache
def js_strings(language: str) -> str:
    """The JSON object the page hands its scripts: each JS text -> its translation. Texts
    without a translation are left out, so the script falls back to the English."""
    translations = catalog(language)
    table = {}
    for message in js_messages():
        translated = translations.gettext(message)
        if translated != message:
            table[message] = translated
    return json.dumps(table, ensure_ascii=False, sort_keys=True)
