"""The app's parts, in the order of a table of contents."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from study import api, researcher
    from study.participant import bp as participant_bp
    from study.researcher.prolific_pages import bp as prolific_bp
    from study.researcher.views import bp as researcher_bp

    app.register_blueprint(participant_bp)
    app.register_blueprint(api.blueprint(), url_prefix="/api/v1")
    app.register_blueprint(researcher_bp, url_prefix="/researcher")
    app.register_blueprint(prolific_bp, url_prefix="/researcher")
    researcher.init_app(app)
