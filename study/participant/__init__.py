"""Participant pages: consent, instructions, practice, trials, debrief."""

from flask import Blueprint, jsonify

bp = Blueprint("participant", __name__)


@bp.get("/healthz")
def healthz():
    """No database work: the benchmarks' baseline route."""
    return jsonify(ok=True)
