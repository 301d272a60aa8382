"""Researcher dashboard (behind a login): studies, progress, creation, preview, export."""

from flask import Blueprint, Flask

bp = Blueprint("researcher", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    """App-level set-up of the researcher side (CSRF, CLI commands)."""
