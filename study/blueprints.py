"""The app's parts, in the order of a table of contents."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from study import researcher
    from study.api import bp as api_bp
    from study.participant import bp as participant_bp

    app.register_blueprint(participant_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    app.register_blueprint(researcher.bp, url_prefix="/researcher")
    researcher.init_app(app)
