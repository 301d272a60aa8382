"""A researcher's preview: the whole participant flow, nothing stored.

When a logged-in researcher (session key `researcher_id`) starts with `"preview": true`, the
state that a participant row would hold (seed, position, staircase) lives in the signed session
cookie instead, and the token is the fixed string `preview`. The trial list is rebuilt from the
seed on each call with the same `build_trial_plan` that real participants get.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import current_app, jsonify, request, session
from sqlalchemy import select

from study import db, staircase
from study.assignment import StimulusRef, build_trial_plan
from study.errors import ApiError
from study.feedback import classifier_path
from study.settings import StudySettings
from study.tables import Condition, Stimulus, Study

PREVIEW_TOKEN = "preview"
TOKEN_HEADER = "X-Participant-Token"


def requested(body: dict[str, Any]) -> bool:
    return body.get("preview") is True


def active() -> bool:
    """Whether this request is a preview call (token `preview`); refuses it without a login."""
    if request.headers.get(TOKEN_HEADER) != PREVIEW_TOKEN:
        return False
    if session.get("researcher_id") is None or "preview" not in session:
        raise ApiError(401, "previews need a researcher login and a started preview", TOKEN_HEADER)
    return True


def _settings(study: Study, condition_id: int | None) -> StudySettings:
    settings = StudySettings.from_dict(study.settings)
    cond = db.session().get(Condition, condition_id) if condition_id else None
    return settings.merged(cond.settings) if cond is not None else settings


def start(slug: str):  # noqa: ANN201
    if session.get("researcher_id") is None:
        raise ApiError(403, "only a logged-in researcher can preview a study", "preview")
    s = db.session()
    study = s.scalar(select(Study).where(Study.slug == slug))
    if study is None:
        raise ApiError(404, "no such study", None)
    condition = s.scalar(
        select(Condition).where(Condition.study_id == study.id).order_by(Condition.id).limit(1)
    )
    settings = _settings(study, condition.id if condition else None)
    state = {
        "slug": slug,
        "seed": secrets.randbelow(2**31 - 1),
        "condition_id": condition.id if condition else None,
        "index": 0,
        "last_uuid": None,
        "staircase": staircase.initial_state(settings.staircase) if settings.staircase.enabled else {},
    }
    n = len(_plan(study, settings, state["seed"]))
    if n == 0:
        raise ApiError(410, "this study has no stimuli yet", None)
    session["preview"] = state
    return jsonify(
        token=PREVIEW_TOKEN,
        participant_id="preview",
        condition=condition.name if condition else None,
        n_trials=n,
        current_index=0,
        preview=True,
    ), 201


def _plan(study: Study, settings: StudySettings, seed: int) -> list:
    rows = db.session().execute(
        select(Stimulus.id, Stimulus.role).where(Stimulus.study_id == study.id)
    )
    return build_trial_plan([StimulusRef(i, r) for i, r in rows], settings, seed)


def _context() -> tuple[dict[str, Any], Study, StudySettings, list]:
    state = dict(session["preview"])
    study = db.session().scalar(select(Study).where(Study.slug == state["slug"]))
    if study is None:
        raise ApiError(404, "no such study", None)
    settings = _settings(study, state["condition_id"])
    return state, study, settings, _plan(study, settings, state["seed"])


def get_trial() -> dict[str, Any]:
    from study.api.endpoints import TrialView, trial_exposure, trial_json

    state, study, settings, plan = _context()
    index = state["index"]
    if index >= len(plan):
        return {"done": True, "n_trials": len(plan), "current_index": index, "preview": True}
    planned = plan[index]
    stimulus = db.session().get(Stimulus, planned.stimulus_id)
    exposure = trial_exposure(study.task, planned.kind, settings, state["staircase"])
    view = TrialView(index + 1, index, planned.kind, exposure)
    feedback = study.task == "clickme" and classifier_path(current_app, settings) is not None
    return {"trial": trial_json(study, settings, view, stimulus, len(plan), feedback), "preview": True}


def post_response(client_uuid: str, trial_id: int, body: dict[str, Any]):  # noqa: ANN201
    from study.api.endpoints import parse_response

    state, study, settings, plan = _context()
    if client_uuid == state["last_uuid"]:
        return jsonify(response_id=None, trial_id=trial_id, correct=None, feedback={},
                       next_index=state["index"], preview=True), 200
    if trial_id != state["index"] + 1 or state["index"] >= len(plan):
        raise ApiError(409, f"trial {trial_id} is not the current trial", "trial_id")
    fields = parse_response(study.task, settings, body)
    planned = plan[state["index"]]
    correct, feedback = None, {}
    if study.task == "realfake":
        stimulus = db.session().get(Stimulus, planned.stimulus_id)
        truth = "fake" if stimulus.source == "model" else "real"
        correct = fields["answer"] == truth
        if planned.kind == "practice" and settings.practice_feedback:
            feedback = {"truth": truth}
        if planned.kind == "main" and settings.staircase.enabled:
            state["staircase"] = staircase.update(state["staircase"], correct, settings.staircase)
    state["index"] += 1
    state["last_uuid"] = client_uuid
    session["preview"] = state
    return jsonify(response_id=None, trial_id=trial_id, correct=correct, feedback=feedback,
                   next_index=state["index"], preview=True), 201


def complete() -> dict[str, Any]:
    state, study, _settings_, plan = _context()
    if state["index"] < len(plan):
        raise ApiError(409, f"{len(plan) - state['index']} trials are not answered yet", None)
    return {"completion_code": study.completion_code, "redirect_url": None, "preview": True}


def trial_stimulus(trial_id: int) -> tuple[Study, StudySettings, Stimulus]:
    """Study, settings and stimulus of a preview trial up to the current one."""
    state, study, settings, plan = _context()
    index = trial_id - 1
    if not 0 <= index < len(plan) or index > state["index"]:
        raise ApiError(404, "no such trial in this preview", "trial_id")
    return study, settings, db.session().get(Stimulus, plan[index].stimulus_id)
