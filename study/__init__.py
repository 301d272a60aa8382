"""The study platform: a Flask app where participants do ClickMe and real-or-fake tasks."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response

from study import db, errors
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
    db.init_app(app)
    errors.register(app)
    app.after_request(_security_headers)

    from study import blueprints

    blueprints.register(app)
    return app


# No inline scripts or styles anywhere (templates load /static files only); images may come
# from blob: URLs because the task pages fetch stimuli with the participant token.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def _security_headers(resp: Response) -> Response:
    resp.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    # Prolific and MTurk ids travel in the participant's URL: never leak it to other sites.
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    # Pages and API answers may hold a participant's token or trial data: no cache keeps them.
    # Static files and stimulus images set their own Cache-Control, which stays.
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp
