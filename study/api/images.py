"""Stimulus files: located from the database row, never from anything in the request."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, send_file

from study.errors import ApiError
from study.models import Stimulus


def stimulus_file(app: Flask, stimulus: Stimulus) -> Path:
    """The PNG of `stimulus`: its stored path, absolute or relative to STIMULI_ROOT."""
    path = Path(stimulus.path)
    if not path.is_absolute():
        path = Path(app.config["STIMULI_ROOT"]) / path
    return path


def send_stimulus(app: Flask, stimulus: Stimulus) -> Response:
    path = stimulus_file(app, stimulus)
    if not path.is_file():
        app.logger.error("stimulus %s: file %s is missing", stimulus.id, path)
        raise ApiError(404, "the image file of this stimulus is missing on the server", None)
    resp = send_file(path, mimetype="image/png", max_age=3600, conditional=True)
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp
