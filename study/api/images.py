"""Stimulus files: located from the database row (under STIMULI_ROOT), never from anything in
the request."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, send_file

from study.display import displayed_file
from study.errors import ApiError
from study.settings import DisplaySettings
from study.tables import Stimulus


def stimulus_file(app: Flask, stimulus: Stimulus) -> Path | None:
    """The PNG of `stimulus`: its stored path under STIMULI_ROOT, or None when that path would
    leave the root (a stored path is trusted data, but a bad import must not expose files)."""
    root = Path(app.config["STIMULI_ROOT"]).resolve()
    path = (root / stimulus.path).resolve()
    if not path.is_relative_to(root):
        app.logger.error("stimulus %s: path %r leaves STIMULI_ROOT", stimulus.id, stimulus.path)
        return None
    return path


def send_stimulus(app: Flask, stimulus: Stimulus, display: DisplaySettings | None = None) -> Response:
    """The stored PNG, or with `display` the file a participant sees (study/display.py)."""
    path = stimulus_file(app, stimulus)
    if path is None or not path.is_file():
        app.logger.error("stimulus %s: no image file at %s", stimulus.id, path)
        raise ApiError(404, "the image file of this stimulus is missing on the server", None)
    if display is not None:
        path = displayed_file(path, stimulus.sha256, app.config["STIMULI_ROOT"], display)
    resp = send_file(path, mimetype="image/png", max_age=3600, conditional=True)
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp
