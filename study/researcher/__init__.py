"""Researcher dashboard (behind a login): studies, progress, creation, preview, export."""

from __future__ import annotations

from flask import Blueprint, Flask, request
from flask_wtf.csrf import CSRFProtect

bp = Blueprint(
    "researcher", __name__, template_folder="templates", static_folder="static",
    static_url_path="/static",
)

csrf = CSRFProtect()
UPLOAD_MAX_BYTES = 200 * 1024 * 1024  # a zip bundle of stimuli; other requests keep the app limit

from study.researcher import views  # noqa: E402, F401  (adds the routes to bp before registration)


def init_app(app: Flask) -> None:
    """App-level set-up of the researcher side: a larger body limit for logged-in manifest
    uploads, CSRF on every form (the JSON API, authenticated by its token header, is exempt),
    and the CLI commands on app.cli."""
    from study import auth
    from study.cli import register_commands

    app.config.setdefault("RESEARCHER_UPLOAD_MAX_BYTES", UPLOAD_MAX_BYTES)

    @app.before_request
    def _upload_limit() -> None:
        # Runs before CSRFProtect's check, which is what first reads the body.
        if request.endpoint == "researcher.new_study" and auth.current_researcher_id() is not None:
            request.max_content_length = app.config["RESEARCHER_UPLOAD_MAX_BYTES"]

    csrf.init_app(app)
    api = app.blueprints.get("api")
    if api is not None:
        csrf.exempt(api)
    register_commands(app.cli)
