"""Participant endpoints of /api/v1 (docs/formats.md section 2): each parses the request, calls
a step of the participant's life cycle (study/participation) and serialises what it returns.

A participant is identified by the secret token in the `X-Participant-Token` header; the token
`preview` runs a researcher's preview through the same steps with nothing stored.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from flask import Response, current_app, jsonify, request, session
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from study import db
from study.api import preview
from study.api.images import send_stimulus, stimulus_file
from study.errors import ApiError, error_response
from study.feedback import classifier_path, classify, load_gray
from study.manifest import shown_class, words_of_label
from study.participation import database, lifecycle
from study.participation.database import DatabaseLedger, ScreenedOut, Started
from study.participation.lifecycle import Finished, Ledger, ShownTrial
from study.participation.rules import PLATFORM_IDS, TOKEN_HEADER, external_ids
from study.participation.scoring import answer_key
from study.settings import StudySettings
from study.tables import Stimulus, Study, utcnow
from study.validation import (
    MAX_ID,
    get_int,
    get_str,
    get_uuid,
    json_object,
    parse_clicks,
    parse_events,
    parse_screen,
)


def participant() -> AbstractContextManager[Ledger]:
    """The ledger of the request's participant, to use in a `with` block: a preview's, or the
    database's for the token."""
    if preview.active():
        return preview.ledger()
    token = request.headers.get(TOKEN_HEADER, "")
    if not token:
        raise ApiError(401, f"the {TOKEN_HEADER} header is required", TOKEN_HEADER)
    return DatabaseLedger(token, current_app.extensions.setdefault("participations", {}))


def _reply(data: dict[str, Any], status: int = 200, previewed: bool = False) -> tuple[Response, int]:
    """A JSON reply; a preview's replies say so."""
    if previewed:
        data["preview"] = True
    return jsonify(data), status


def start(slug: str) -> ResponseReturnValue:
    """A new participant (or a researcher's preview)."""
    body = json_object()
    if body.get("consent") is not True:
        raise ApiError(400, "consent must be true to take part", "consent")
    platform = get_str(body, "platform", choices=tuple(PLATFORM_IDS)) or "direct"
    ids = external_ids(platform, body)
    if preview.requested(body):
        return _reply(_started_json(preview.start(slug)), 201, previewed=True)
    start_key = get_str(body, "start_key", max_len=64)
    screen = parse_screen(body)
    user_agent = (request.user_agent.string or "")[:500] or None
    started = database.start(slug, platform, ids, start_key, user_agent, utcnow(), screen)
    tokens = dict(session.get("participants") or {})
    tokens[slug] = started.token  # the participant pages find the participant by this cookie
    session["participants"] = tokens
    if isinstance(started, ScreenedOut):
        # The study's page (/s/<slug>) then says why, from this cookie.
        session["screened_out"] = {**(session.get("screened_out") or {}), slug: started.reasons}
        return error_response(403, " ".join(started.reasons), started.field)
    return _reply(_started_json(started), 201 if started.created else 200)


def _started_json(started: Started) -> dict[str, Any]:
    return {"token": started.token, "participant_id": started.public_id,
            "condition": started.condition, "n_trials": started.n_trials,
            "current_index": started.current_index}


def get_trial() -> ResponseReturnValue:
    with participant() as ledger:
        shown = lifecycle.next_trial(ledger)
    if isinstance(shown, Finished):
        return _reply({"done": True, "n_trials": shown.n_trials, "current_index": shown.current_index},
                      previewed=ledger.preview)
    return _reply({"trial": trial_json(shown)}, previewed=ledger.preview)


def post_response() -> ResponseReturnValue:
    """Validate an answer, then store it once (study/participation/lifecycle.answer). The common
    case, a participant's token and a JSON body, is served by study/api/answer_lane.py with
    `answer` below, without Flask's request machinery; this view serves the rest (previews,
    refusals of the request itself)."""
    body = json_object()
    ids = answer_ids(body)
    with participant() as ledger:
        data, status = answer(ledger, ids, body)
    return _reply(data, status, ledger.preview)


def answer_ids(body: dict[str, Any]) -> tuple[str, int]:
    """The client UUID and trial id of an answer body (checked before the participant is)."""
    return (get_uuid(body, "client_uuid"),
            get_int(body, "trial_id", required=True, lo=1, field="trial_id"))


def answer(ledger: Ledger, ids: tuple[str, int], body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The reply to an answer from the participant of `ledger`, and its HTTP status."""
    a = lifecycle.answer(ledger, *ids, body)
    return ({"response_id": a.response_id, "trial_id": a.trial_id, "correct": a.correct,
             "feedback": a.feedback, "next_index": a.next_index}, 201 if a.created else 200)


def post_events() -> ResponseReturnValue:
    body = json_object()
    events = parse_events(body)
    with participant() as ledger:
        n = lifecycle.record_events(ledger, events, utcnow())
    return _reply({"stored": n}, 201)


def complete() -> ResponseReturnValue:
    with participant() as ledger:
        done = lifecycle.complete(ledger, utcnow())
    return _reply({"completion_code": done.completion_code, "redirect_url": done.redirect_url},
                  previewed=ledger.preview)


def classify_clicks() -> ResponseReturnValue:
    """The feedback classifier's guess from the revealed pixels of a ClickMe trial."""
    body = json_object()
    trial_id = get_int(body, "trial_id", required=True, lo=1, field="trial_id")
    with participant() as ledger:
        shown = lifecycle.shown_stimulus(ledger, trial_id)
    study, settings, stimulus = shown.study, shown.settings, shown.stimulus
    if study.task != "clickme":
        raise ApiError(400, "feedback exists for ClickMe trials only", "trial_id")
    clicks = parse_clicks(body.get("clicks"), budget=settings.click_budget)
    path = classifier_path(current_app, settings)
    if path is None:
        raise ApiError(404, "this study has no feedback classifier", None)
    path_png = stimulus_file(current_app, stimulus)
    if path_png is None or not path_png.is_file():
        raise ApiError(404, "the image file of this stimulus is missing on the server", None)
    image = load_gray(path_png)
    label, prob = classify(current_app, path, image, [(c.x, c.y) for c in clicks],
                           settings.bubble_radius)
    return _reply({"class_text": class_text_in_study(study.id, label), "probability": prob,
                   "correct": label == stimulus.class_label})


def trial_image(trial_id: int) -> ResponseReturnValue:
    """The image of one of the participant's trials up to the current one (no peeking ahead)."""
    with participant() as ledger:
        shown = lifecycle.shown_stimulus(ledger, trial_id)
    return send_stimulus(current_app, shown.stimulus, shown.settings.display)


def stimulus_image(stimulus_id: int) -> ResponseReturnValue:
    """Any stimulus's image by its id, for a logged-in researcher (dashboards, previews)."""
    if session.get("researcher_id") is None:
        raise ApiError(401, "a researcher login is required", None)
    stimulus = db.session().get(Stimulus, stimulus_id) if 1 <= stimulus_id <= MAX_ID else None
    if stimulus is None:
        raise ApiError(404, "no such stimulus", "stimulus_id")
    return send_stimulus(current_app, stimulus)


# --------------------------------------------------------------------------- replies


def client_settings(study: Study, settings: StudySettings, feedback: bool) -> dict[str, Any]:
    """The settings a task page needs (nothing that gives answers away). `pixelated`: the image
    is sent as stored and the page enlarges it nearest-neighbour (display mode `pixels`)."""
    pixelated = settings.display.mode == "pixels"
    if study.task == "clickme":
        return {
            "bubble_radius": settings.bubble_radius,
            "click_budget": settings.click_budget,
            "min_clicks": settings.min_clicks,
            "feedback": feedback,
            "pixelated": pixelated,
        }
    return {
        "pixelated": pixelated,
        "fixation_ms": settings.fixation_ms,
        "mask_ms": settings.mask_ms,
        "confidence": settings.confidence.enabled,
        "confidence_min": settings.confidence.min,
        "confidence_max": settings.confidence.max,
    }


def trial_json(t: ShownTrial) -> dict[str, Any]:
    study, settings = t.study, t.settings
    feedback = study.task == "clickme" and classifier_path(current_app, settings) is not None
    out: dict[str, Any] = {
        "id": t.id,
        "index": t.index,
        "n_trials": t.n_trials,
        "kind": t.kind,
        "task": study.task,
        "image_url": f"/api/v1/participant/trials/{t.id}/image",
        "exposure_ms": t.exposure_ms,
        "settings": client_settings(study, settings, feedback),
    }
    if study.task == "clickme":
        out["class_text"] = shown_class(t.stimulus)
    key = answer_key(study.task, t.kind, t.stimulus.source, settings.practice_feedback)
    if key is not None:
        out["answer_key"] = key
    return out


def class_text_in_study(study_id: int, class_label: str) -> str | None:
    """The display text of a class of the study's stimuli (the feedback classifier names
    classes by their ids), or the label itself when it is plain words, else None."""
    text = db.session().scalar(
        select(Stimulus.class_text)
        .where(Stimulus.study_id == study_id, Stimulus.class_label == class_label,
               Stimulus.class_text.is_not(None))
        .limit(1)
    )
    return text or words_of_label(class_label)
