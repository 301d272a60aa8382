"""Researcher dashboard (behind a login): studies, progress, creation, preview, export.

The pages are in study/researcher/views.py; `init_app` sets up what they need app-wide.
"""

from __future__ import annotations

from flask import Flask, request
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
UPLOAD_MAX_BYTES = 200 * 1024 * 1024  # a zip bundle of stimuli; other requests keep the app limit


def init_app(app: Flask) -> None:
    """A larger body limit for logged-in manifest uploads, and CSRF on every form (the JSON API,
    authenticated by its token header, is exempt)."""
    from study import auth

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
