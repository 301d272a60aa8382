"""The study platform: a Flask app where participants do ClickMe and real-or-fake tasks."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response
from flask.sessions import SecureCookieSessionInterface

from study import db, errors, i18n
from study.config import PROJECT_ROOT, build_config


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults and environment from study.config, then `config` overrides."""
    instance = os.environ.get("STUDY_INSTANCE_PATH", str(PROJECT_ROOT / "instance"))
    app = Flask(__name__, instance_path=instance, instance_relative_config=True)
    app.config.from_mapping(build_config(app.instance_path))
    if config:
        app.config.from_mapping(config)
    if app.config["TRUSTED_PROXIES"]:
        # Behind a TLS proxy: the client address (login rate limit) and scheme come from its
        # X-Forwarded-* headers, trusted only for this many hops.
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.session_interface = CachedSerializerSessionInterface()
    db.init_app(app)
    errors.register(app)
    i18n.init_app(app)
    app.after_request(_security_headers)

    from study import blueprints
    from study.cli import register_commands

    blueprints.register(app)
    register_commands(app.cli)
    return app


class CachedSerializerSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per secret key
    instead of on every request (building it is a visible share of the API's hot path)."""

    def get_signing_serializer(self, app: Flask):
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = getattr(self, "_cached", None)
        if cached is None or cached[0] != key:
            cached = (key, super().get_signing_serializer(app))
            self._cached = cached
        return cached[1]


# No inline scripts or styles anywhere (templates load /static files only); images may come
# from blob: URLs because the task pages fetch stimuli with the participant token.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Prolific and MTurk ids travel in the participant's URL: never leak it to other sites.
    ("Referrer-Policy", "no-referrer"),
    # Pages and API answers may hold a participant's token or trial data: no cache keeps them.
    # Static files and stimulus images set their own Cache-Control, which stays.
    ("Cache-Control", "no-store"),
)


def _security_headers(resp: Response) -> Response:
    """Add each of SECURITY_HEADERS that the response does not set itself (one pass over its
    headers per request, rather than one scan per header)."""
    present = {name.lower() for name in resp.headers.keys()}
    for name, value in SECURITY_HEADERS:
        if name.lower() not in present:
            resp.headers.add(name, value)
    return resp
