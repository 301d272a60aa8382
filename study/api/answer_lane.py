"""The answer endpoint's lane: POST /api/v1/participant/responses from a participant, served as
plain WSGI around the Flask app.

Answers are nearly all of a study's requests. Flask's request machinery (request context,
routing, before/after hooks, the session, a Response object) was about a third of the server's
CPU per answer. Here the common case (a participant's token, a JSON body with a Content-Length
within the app's limit; not in debug mode) is parsed, answered and serialised by the same
functions the Flask view uses (`validation.parse_json_object`, `endpoints.answer_ids`,
`endpoints.answer`), with the app's security headers. Every other request, previews included,
goes to Flask unchanged; so does every refusal and failure of a lane request, which is answered
by the app's own error handlers in a request context built for it.
tests/study/test_answer_lane.py checks that the lane's replies are byte for byte Flask's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from io import BytesIO
from typing import Any

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from study.api import endpoints
from study.participation.database import DatabaseLedger
from study.participation.preview import PREVIEW_TOKEN
from study.security import SECURITY_HEADERS
from study.validation import parse_json_object

PATH = "/api/v1/participant/responses"
_TOKEN_KEY = "HTTP_X_PARTICIPANT_TOKEN"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class AnswerLane:
    """WSGI middleware: the lane's requests answered here, every other one by `app.wsgi_app`."""

    def __init__(self, app: Flask, wsgi_app: WsgiApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.participations = app.extensions.setdefault("participations", {})

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = self._lane_length(environ)
        if length is None:
            return self.wsgi_app(environ, start_response)
        raw = _read(environ["wsgi.input"], length)
        with self.app.app_context():
            try:
                body = parse_json_object(raw)
                ids = endpoints.answer_ids(body)
                with DatabaseLedger(environ[_TOKEN_KEY], self.participations) as ledger:
                    data, status = endpoints.answer(ledger, ids, body)
            except Exception as exc:
                return self._flask_answer(environ, raw, exc, start_response)
            # jsonify's body in compact form (the lane leaves debug mode's indented JSON to Flask)
            out = (self.app.json.dumps(data, separators=(",", ":")) + "\n").encode()
        headers = [("Content-Type", self.app.json.mimetype), ("Content-Length", str(len(out))),
                   *SECURITY_HEADERS]
        start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", headers)  # as Werkzeug's
        return [out]

    def _lane_length(self, environ: dict[str, Any]) -> int | None:
        """The body length of a request the lane serves; None for every other request."""
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return None
        if self.app.debug or getattr(self.app.json, "compact", None) is False:
            return None  # a developer's debugging: Flask's debugger and indented JSON
        token = environ.get(_TOKEN_KEY)
        if not token or token == PREVIEW_TOKEN or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
            return None
        length = environ.get("CONTENT_LENGTH", "")
        if not length.isdigit():
            return None
        n = int(length)
        limit = self.app.config.get("MAX_CONTENT_LENGTH")
        return n if n > 0 and (limit is None or n <= limit) else None

    def _flask_answer(self, environ: dict[str, Any], raw: bytes, exc: Exception,
                      start_response: StartResponse) -> Iterable[bytes]:
        """The app's own answer to `exc` raised by a lane request: its error handlers (JSON
        4xx, 503 for an outage, 500), after-request hooks and exception propagation, as
        `Flask.full_dispatch_request` and `Flask.wsgi_app` would give them."""
        environ["wsgi.input"] = BytesIO(raw)
        ctx = self.app.request_context(environ)
        ctx.push()
        error: BaseException | None = None
        try:
            try:
                response = self.app.finalize_request(self.app.handle_user_exception(exc))
            except Exception as unhandled:
                error = unhandled
                response = self.app.handle_exception(unhandled)
            return response(environ, start_response)
        except BaseException:
            error = sys.exc_info()[1]
            raise
        finally:
            ctx.pop(error)


def _read(stream: Any, n: int) -> bytes:
    """`n` bytes of the request body (fewer only if the client sent fewer)."""
    chunks = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)
