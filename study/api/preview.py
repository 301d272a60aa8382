"""The session side of a researcher's preview: which requests are preview calls, and the
preview's state in the signed session cookie. The steps themselves are the participant's
(study/participation/lifecycle.py over a `PreviewLedger`).

A logged-in researcher (session key `researcher_id`) starts with `"preview": true`; the token
is then the fixed string `preview`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import request, session

from study.errors import ApiError
from study.participation import preview
from study.participation.database import Started
from study.participation.preview import PREVIEW_TOKEN, PreviewLedger
from study.participation.rules import TOKEN_HEADER


def requested(body: dict[str, Any]) -> bool:
    return body.get("preview") is True


def active() -> bool:
    """Whether this request is a preview call (token `preview`); refuses it without a login."""
    if request.headers.get(TOKEN_HEADER) != PREVIEW_TOKEN:
        return False
    if session.get("researcher_id") is None or "preview" not in session:
        raise ApiError(401, "previews need a researcher login and a started preview", TOKEN_HEADER)
    return True


def start(slug: str) -> Started:
    if session.get("researcher_id") is None:
        raise ApiError(403, "only a logged-in researcher can preview a study", "preview")
    state, started = preview.start(slug)
    session["preview"] = state
    return started


@contextmanager
def ledger() -> Iterator[PreviewLedger]:
    """The preview's ledger; its state goes back into the cookie when the step succeeded."""
    state = dict(session["preview"])
    yield PreviewLedger(state)
    session["preview"] = state
