"""The study platform: a Flask app where participants do ClickMe and real-or-fake tasks."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from study import db, errors, i18n
from study.config import PROJECT_ROOT, build_config
from study.security import add_security_headers


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
    app.after_request(add_security_headers)

    from study import blueprints
    from study.cli import register_commands

    blueprints.register(app)
    register_commands(app.cli)
    if app.config["ANSWER_LANE"]:
        from study.api.answer_lane import AnswerLane

        app.wsgi_app = AnswerLane(app, app.wsgi_app)  # type: ignore[method-assign]
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
