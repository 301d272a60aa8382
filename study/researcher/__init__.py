"""Researcher dashboard (behind a login): studies, progress, creation, preview, export."""

from flask import Blueprint

bp = Blueprint("researcher", __name__, template_folder="templates")
