"""Participant endpoints of /api/v1 (docs/formats.md section 2).

A participant is identified by the secret token in the `X-Participant-Token` header. Each
response is validated, then stored with its clicks in one transaction together with the
participant's progress (and staircase state); a repeated `client_uuid` gets the stored result.
A researcher's preview (study/api/preview.py) answers the same calls without storing anything.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from flask import current_app, jsonify, request, session
from sqlalchemy import func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from study import db, response_store, staircase
from study.api import bp, preview
from study.api.images import send_stimulus, stimulus_file
from study.assignment import StimulusRef, build_trial_plan, choose_condition
from study.errors import ApiError
from study.feedback import classifier_path, classify, load_gray
from study.manifest import shown_class, words_of_label
from study.settings import StudySettings
from study.tables import (
    BrowserEvent,
    Condition,
    Participant,
    Stimulus,
    Study,
    Trial,
    utcnow,
)
from study.validation import (
    get_int,
    get_number,
    get_str,
    get_uuid,
    json_object,
    parse_clicks,
    parse_events,
)

TOKEN_HEADER = "X-Participant-Token"
PLATFORM_IDS = {
    # platform: (external id, external study id, external session id) as URL/body keys
    "prolific": ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID"),
    "mturk": ("workerId", "hitId", "assignmentId"),
    "direct": (None, None, None),
}
MAX_ID = 2**31 - 1  # ids are 32-bit integers on every backend
PROLIFIC_COMPLETE_URL = "https://app.prolific.com/submissions/complete?cc={code}"


# --------------------------------------------------------------------------- shared helpers


def study_settings(study: Study, condition: Condition | None) -> StudySettings:
    return settings_from_json(study.settings, condition.settings if condition is not None else None)


def refusal(study: Study | None, now: dt.datetime) -> tuple[int, str] | None:
    """Why a new participant may not start this study (status, message), or None."""
    if study is None or study.status == "draft":
        return 404, "no such study"
    if study.status in ("paused", "closed"):
        return 410, f"this study is {study.status} and does not accept participants now"
    settings = settings_from_json(study.settings, None)
    if settings.max_participants is not None:
        since = now - dt.timedelta(minutes=settings.active_window_minutes)
        n = db.session().scalar(
            select(func.count())
            .select_from(Participant)
            .where(
                Participant.study_id == study.id,
                or_(
                    Participant.status == "completed",
                    (Participant.status == "started") & (Participant.last_seen_at >= since),
                ),
            )
        )
        if n >= settings.max_participants:
            return 410, "this study is full"
    return None


def external_ids(platform: str, values: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(external id, external study id, external session id) of a start request."""
    id_key, study_key, session_key = PLATFORM_IDS[platform]
    if id_key is None:
        return None, None, None
    ext = get_str(values, id_key, required=True, max_len=128)
    ext_study = get_str(values, study_key, max_len=128)
    ext_session = get_str(values, session_key, max_len=128)
    if platform == "mturk" and ext_session == "ASSIGNMENT_ID_NOT_AVAILABLE":
        raise ApiError(400, "accept the HIT before starting", "assignmentId")
    return ext, ext_study, ext_session


def completion_redirect(settings: StudySettings, code: str, p: Participant) -> str | None:
    """Where the debrief sends the participant: back to the platform they came from, unless
    the study redirects nowhere (`redirect_platform: none`)."""
    if settings.redirect_platform == "none":
        return None
    if p.platform == "prolific":
        return PROLIFIC_COMPLETE_URL.format(code=quote(code, safe=""))
    if p.platform == "mturk":
        query = urlencode({"assignmentId": p.external_session_id or "", "completion_code": code})
        return f"{settings.mturk_submit_url}?{query}"
    return None


def current_participant(for_update: bool = False) -> Participant:
    token = request.headers.get(TOKEN_HEADER, "")
    if not token:
        raise ApiError(401, f"the {TOKEN_HEADER} header is required", TOKEN_HEADER)
    stmt = select(Participant).where(Participant.token == token)
    if for_update:
        stmt = stmt.with_for_update()
    p = db.session().scalar(stmt)
    if p is None:
        raise ApiError(401, "unknown participant token", TOKEN_HEADER)
    return p


def own_trial(p: Participant, trial_id: int | None) -> Trial:
    in_range = trial_id is not None and 1 <= trial_id <= MAX_ID
    trial = db.session().get(Trial, trial_id) if in_range else None
    if trial is None or trial.participant_id != p.id:
        raise ApiError(404, "no such trial for this participant", "trial_id")
    return trial


def trial_exposure(task: str, kind: str, settings: StudySettings, state: dict[str, Any]) -> float | None:
    """The exposure (ms) to show a real-or-fake trial for; None = until the answer."""
    if task != "realfake":
        return None
    sc = settings.staircase
    if not sc.enabled:
        return settings.exposure_ms
    if kind == "catch":
        return sc.max_ms  # attention checks are shown long enough to be easy
    if kind == "practice":
        return sc.start_ms
    return float(state.get("exposure_ms", sc.start_ms))


@dataclass(frozen=True)
class TrialView:
    """What a page needs to know about a trial (a stored row, or a preview's planned trial)."""

    id: int
    index: int
    kind: str
    exposure_ms: float | None


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


def trial_json(
    study: Study, settings: StudySettings, trial: TrialView, stimulus: Stimulus, n_trials: int,
    feedback: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": trial.id,
        "index": trial.index,
        "n_trials": n_trials,
        "kind": trial.kind,
        "task": study.task,
        "image_url": f"/api/v1/participant/trials/{trial.id}/image",
        "exposure_ms": trial.exposure_ms,
        "settings": client_settings(study, settings, feedback),
    }
    if study.task == "clickme":
        out["class_text"] = shown_class(stimulus)
    if trial.kind == "practice" and settings.practice_feedback and study.task == "realfake":
        out["answer_key"] = "fake" if stimulus.source == "model" else "real"
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


def parse_response(task: str, settings: StudySettings, body: dict[str, Any]) -> dict[str, Any]:
    """The validated fields of a response to a `task` trial."""
    out: dict[str, Any] = {
        "rt_ms": get_number(body, "rt_ms", required=True),
        "exposure_ms": get_number(body, "exposure_ms"),
        "client_sent_at": get_number(body, "client_sent_at", hi=1e14),
    }
    if task == "realfake":
        out["answer"] = get_str(body, "answer", required=True, choices=("real", "fake"))
        conf = settings.confidence
        out["confidence"] = get_int(body, "confidence", lo=conf.min, hi=conf.max)
        if conf.enabled and out["confidence"] is None:
            raise ApiError(400, "confidence is required in this study", "confidence")
        if body.get("clicks"):
            raise ApiError(400, "clicks belong to ClickMe trials", "clicks")
        out["clicks"] = []
    else:
        if body.get("answer") is not None:
            raise ApiError(400, "answer belongs to real-or-fake trials", "answer")
        out["answer"] = None
        out["confidence"] = None
        out["clicks"] = parse_clicks(body.get("clicks"), budget=settings.click_budget)
        if len(out["clicks"]) < settings.min_clicks:
            raise ApiError(
                400, f"at least {settings.min_clicks} clicks are needed", "clicks"
            )
    return out


# --------------------------------------------------------------------------- endpoints


@bp.post("/studies/<slug>/participants")
def start(slug: str):  # noqa: ANN201
    """A new participant: refusals first, then condition, seed and the whole trial list."""
    body = json_object()
    if body.get("consent") is not True:
        raise ApiError(400, "consent must be true to take part", "consent")
    platform = get_str(body, "platform", choices=tuple(PLATFORM_IDS)) or "direct"
    ext, ext_study, ext_session = external_ids(platform, body)
    if preview.requested(body):
        return preview.start(slug)
    s = db.session()
    now = utcnow()
    # The study row is locked (PostgreSQL) until this start commits, so that simultaneous starts
    # see each other: conditions stay balanced and a full study is not overfilled.
    study = s.scalar(select(Study).where(Study.slug == slug).with_for_update())
    why = refusal(study, now)
    if why:
        raise ApiError(why[0], why[1], None)
    id_field = PLATFORM_IDS[platform][0]
    start_key = get_str(body, "start_key", max_len=64)
    if ext is not None:
        existing = _existing_participant(s, study.id, platform, ext)
        if existing is not None:
            return _resume_start(s, slug, existing, start_key, id_field)
    settings = settings_from_json(study.settings, None)
    condition_id = choose_condition(s, study.id, now, settings.active_window_minutes)
    condition = s.get(Condition, condition_id) if condition_id is not None else None
    settings = study_settings(study, condition)
    stimuli = [
        StimulusRef(sid, role)
        for sid, role in s.execute(
            select(Stimulus.id, Stimulus.role).where(Stimulus.study_id == study.id)
        )
    ]
    seed = secrets.randbelow(2**31 - 1)
    plan = build_trial_plan(stimuli, settings, seed)
    if not plan:
        raise ApiError(410, "this study has no stimuli yet", None)
    p = Participant(
        study_id=study.id,
        token=secrets.token_urlsafe(32),
        public_id=str(uuid.uuid4()),
        platform=platform,
        external_id=ext,
        external_study_id=ext_study,
        external_session_id=ext_session,
        status="started",
        condition_id=condition_id,
        seed=seed,
        current_index=0,
        n_trials=len(plan),
        start_key=start_key,
        staircase=staircase.initial_state(settings.staircase) if settings.staircase.enabled else {},
        user_agent=(request.user_agent.string or "")[:500] or None,
        started_at=now,
        last_seen_at=now,
    )
    try:
        s.add(p)
        s.flush()
        s.execute(
            insert(Trial),
            [
                {"participant_id": p.id, "index": i, "stimulus_id": t.stimulus_id, "kind": t.kind}
                for i, t in enumerate(plan)
            ],
        )
        s.commit()
    except IntegrityError:
        s.rollback()  # the same external id started at the same moment in another request
        existing = _existing_participant(s, study.id, platform, ext) if ext is not None else None
        if existing is None:
            raise
        return _resume_start(s, slug, existing, start_key, id_field)
    return jsonify(_started(slug, p, condition.name if condition is not None else None)), 201


def _existing_participant(s, study_id: int, platform: str, ext: str) -> Participant | None:  # noqa: ANN001
    return s.scalar(
        select(Participant).where(
            Participant.study_id == study_id,
            Participant.platform == platform,
            Participant.external_id == ext,
        )
    )


def _resume_start(s, slug: str, p: Participant, start_key: str | None, id_field: str):  # noqa: ANN001, ANN202
    """A repeated start: the same browser's retry (same start_key, not finished) gets its
    participant back with 200; anyone else is refused with 409."""
    if start_key is None or p.start_key != start_key or p.status != "started":
        raise ApiError(409, "this participant has already taken part in this study", id_field)
    condition = s.get(Condition, p.condition_id) if p.condition_id is not None else None
    return jsonify(_started(slug, p, condition.name if condition is not None else None)), 200


def _started(slug: str, p: Participant, condition: str | None) -> dict[str, Any]:
    """The start call's answer; the token also goes into the signed session cookie."""
    tokens = dict(session.get("participants") or {})
    tokens[slug] = p.token
    session["participants"] = tokens
    return {
        "token": p.token,
        "participant_id": p.public_id,
        "condition": condition,
        "n_trials": p.n_trials,
        "current_index": p.current_index,
    }


@bp.get("/participant/trial")
def get_trial():  # noqa: ANN201
    if preview.active():
        return jsonify(preview.get_trial())
    s = db.session()
    p = current_participant()
    if p.current_index >= p.n_trials:
        return jsonify(done=True, n_trials=p.n_trials, current_index=p.current_index)
    row = s.execute(
        select(Trial, Stimulus, Study)
        .join(Stimulus, Trial.stimulus_id == Stimulus.id)
        .join(Study, Study.id == Stimulus.study_id)
        .where(Trial.participant_id == p.id, Trial.index == p.current_index)
    ).one()
    trial, stimulus, study = row
    condition = s.get(Condition, p.condition_id) if p.condition_id else None
    settings = study_settings(study, condition)
    if trial.served_at is None:
        trial.exposure_ms = trial_exposure(study.task, trial.kind, settings, p.staircase)
        trial.served_at = utcnow()
        p.last_seen_at = trial.served_at
        s.commit()
    feedback = study.task == "clickme" and classifier_path(current_app, settings) is not None
    view = TrialView(trial.id, trial.index, trial.kind, trial.exposure_ms)
    return jsonify(trial=trial_json(study, settings, view, stimulus, p.n_trials, feedback))


@functools.lru_cache(maxsize=256)
def _cached_settings(study_json: str, condition_json: str | None) -> StudySettings:
    settings = StudySettings.from_dict(json.loads(study_json))
    return settings.merged(json.loads(condition_json) if condition_json else {})


def settings_from_json(study: dict[str, Any], condition: dict[str, Any] | None) -> StudySettings:
    """Validated, merged settings; cached because every request needs them."""
    return _cached_settings(json.dumps(study, sort_keys=True), json.dumps(condition or {}, sort_keys=True))


@bp.post("/participant/responses")
def post_response():  # noqa: ANN201
    """Validate a response, then store it once (study/response_store.py: on PostgreSQL one round
    trip in the common case, two otherwise; on SQLite one short write transaction)."""
    body = json_object()
    client_uuid = get_uuid(body, "client_uuid")
    trial_id = get_int(body, "trial_id", required=True, lo=1, field="trial_id")
    if preview.active():
        return preview.post_response(client_uuid, trial_id, body)
    token = request.headers.get(TOKEN_HEADER, "")
    if not token:
        raise ApiError(401, f"the {TOKEN_HEADER} header is required", TOKEN_HEADER)
    with response_store.connect() as conn:
        if conn.dialect.name == "postgresql":
            fast = _store_in_one_trip(conn, token, client_uuid, trial_id, body)
            if fast is not None:
                return fast
        ctx = response_store.read_context(conn, token)
        if ctx is None:
            raise ApiError(401, "unknown participant token", TOKEN_HEADER)
        if ctx.trial_id != trial_id:
            return _not_current(conn, ctx, client_uuid, trial_id)
        settings = _cached_settings(ctx.settings_json, ctx.condition_json)
        fields = parse_response(ctx.task, settings, body)
        correct = None
        feedback: dict[str, Any] = {}
        if ctx.task == "realfake":
            truth = "fake" if ctx.source == "model" else "real"
            correct = fields["answer"] == truth
            if ctx.kind == "practice" and settings.practice_feedback:
                feedback = {"truth": truth}
        new_staircase = None
        if ctx.task == "realfake" and ctx.kind == "main" and settings.staircase.enabled:
            new_staircase = staircase.update(ctx.staircase, bool(correct), settings.staircase)
        response = response_store.NewResponse(
            trial_id=trial_id,
            client_uuid=client_uuid,
            answer=fields["answer"],
            correct=correct,
            confidence=fields["confidence"],
            rt_ms=fields["rt_ms"],
            exposure_ms=fields["exposure_ms"] if fields["exposure_ms"] is not None else ctx.exposure_ms,
            feedback=feedback,
            client_sent_at=fields["client_sent_at"],
            clicks=fields["clicks"],
        )
        try:
            response_id = response_store.store(
                conn, ctx.id, ctx.current_index, response, new_staircase, utcnow()
            )
        except IntegrityError:
            response_id = None  # the same UUID, or another answer to this trial, is stored
        if response_id is None:
            return _lost_race(conn, ctx, client_uuid, trial_id)
    return _stored_json(response_id, trial_id, correct, feedback, ctx.current_index + 1), 201


def _store_in_one_trip(conn, token: str, client_uuid: str, trial_id: int, body: dict[str, Any]):  # noqa: ANN001, ANN202
    """PostgreSQL's one-round-trip path (response_store.store_current) for the common case: a
    valid answer to the current trial of a study without a staircase. None when it does not
    apply or stored nothing; the caller's full path then gives the exact answer (the stored
    result of a resend, 409, 404, the field at fault, a 401 for an unknown token)."""
    cache = current_app.extensions.setdefault("participations", {})
    who = response_store.participation(conn, token, cache)
    if who is None:
        return None
    settings = _cached_settings(who.settings_json, who.condition_json)
    realfake = who.task == "realfake"
    if realfake and settings.staircase.enabled:
        return None  # the staircase's next state is computed in Python from the stored one
    try:
        fields = parse_response(who.task, settings, body)
    except ApiError:
        return None  # refused on the full path, which checks first whether this is a resend
    response = response_store.NewResponse(
        trial_id=trial_id, client_uuid=client_uuid, answer=fields["answer"], correct=None,
        confidence=fields["confidence"], rt_ms=fields["rt_ms"], exposure_ms=fields["exposure_ms"],
        feedback={}, client_sent_at=fields["client_sent_at"], clicks=fields["clicks"],
    )
    try:
        stored = response_store.store_current(
            conn, who.id, response, judged=realfake,
            practice_feedback=realfake and settings.practice_feedback, now=utcnow(),
        )
    except IntegrityError:
        return None
    if stored is None:
        return None
    return _stored_json(stored.id, trial_id, stored.correct, stored.feedback, stored.next_index), 201


def _lost_race(conn, ctx: Any, client_uuid: str, trial_id: int):  # noqa: ANN001, ANN202, ANN401
    """Nothing was stored because a concurrent request stored this UUID or answered this trial
    first: the stored result for a resend, 409 for a rival answer."""
    stored = response_store.stored_result(conn, client_uuid)
    if stored is not None:
        return _repeat(stored, ctx.id, ctx.current_index + 1)
    if response_store.trial_answered(conn, trial_id):
        raise ApiError(409, f"trial {trial_id} has already been answered", "trial_id")
    # Neither: a constraint this endpoint does not expect failed. Nothing was stored, and the
    # client's outbox will retry; surface it as a server error rather than a refusal.
    raise RuntimeError(f"response to trial {trial_id} was refused by the database")


def _not_current(conn, ctx: Any, client_uuid: str, trial_id: int):  # noqa: ANN001, ANN202, ANN401
    """A response to a trial other than the current one: a resend of a stored response gets
    the stored result; anything else is refused (404: not this participant's; 409: not now)."""
    stored = response_store.stored_result(conn, client_uuid)
    if stored is not None:
        return _repeat(stored, ctx.id, ctx.current_index)
    index = response_store.trial_index(conn, trial_id, ctx.id)
    if index is None:
        raise ApiError(404, "no such trial for this participant", "trial_id")
    if index < ctx.current_index:
        raise ApiError(409, f"trial {trial_id} has already been answered", "trial_id")
    raise ApiError(
        409,
        f"trial {trial_id} is not the current trial (the current index is {ctx.current_index})",
        "trial_id",
    )


def _stored_json(response_id: int, trial_id: int, correct: bool | None, feedback: dict[str, Any],
                 next_index: int):  # noqa: ANN202
    """The answer to a stored response (201 when stored now, 200 for a resend)."""
    return jsonify(response_id=response_id, trial_id=trial_id, correct=correct, feedback=feedback,
                   next_index=next_index)


def _repeat(stored: Any, participant_id: int, next_index: int):  # noqa: ANN202, ANN401
    if stored.participant_id != participant_id:
        raise ApiError(409, "this client_uuid belongs to another response", "client_uuid")
    return _stored_json(stored.id, stored.trial_id, stored.correct, stored.feedback, next_index), 200


@bp.post("/participant/events")
def post_events():  # noqa: ANN201
    body = json_object()
    events = parse_events(body)
    if preview.active():
        return jsonify(stored=0), 201
    s = db.session()
    p = current_participant()
    trial_ids = {e.trial_id for e in events if e.trial_id is not None}
    if trial_ids:
        own = set(
            s.scalars(
                select(Trial.id).where(Trial.participant_id == p.id, Trial.id.in_(trial_ids))
            )
        )
        for i, e in enumerate(events):
            if e.trial_id is not None and e.trial_id not in own:
                raise ApiError(404, "no such trial for this participant", f"events[{i}].trial_id")
    now = utcnow()
    s.execute(
        insert(BrowserEvent),
        [
            {"participant_id": p.id, "trial_id": e.trial_id, "kind": e.kind, "t_ms": e.t_ms,
             "detail": e.detail, "received_at": now}
            for e in events
        ],
    )
    s.commit()
    return jsonify(stored=len(events)), 201


@bp.post("/participant/complete")
def complete():  # noqa: ANN201
    if preview.active():
        return jsonify(preview.complete())
    s = db.session()
    p = current_participant(for_update=True)
    if p.current_index < p.n_trials:
        left = p.n_trials - p.current_index
        raise ApiError(409, f"{left} of {p.n_trials} trials are not answered yet", None)
    study = s.get(Study, p.study_id)
    condition = s.get(Condition, p.condition_id) if p.condition_id else None
    settings = study_settings(study, condition)
    if p.status != "completed":
        p.status = "completed"
        p.completed_at = p.last_seen_at = utcnow()
        s.commit()
    code = study.completion_code
    return jsonify(
        completion_code=code,
        redirect_url=completion_redirect(settings, code, p),
    )


@bp.post("/participant/classify")
def classify_clicks():  # noqa: ANN201
    body = json_object()
    trial_id = get_int(body, "trial_id", required=True, lo=1, field="trial_id")
    if preview.active():
        study, settings, stimulus = preview.trial_stimulus(trial_id)
    else:
        p = current_participant()
        trial = own_trial(p, trial_id)
        study = db.session().get(Study, p.study_id)
        condition = db.session().get(Condition, p.condition_id) if p.condition_id else None
        settings = study_settings(study, condition)
        stimulus = db.session().get(Stimulus, trial.stimulus_id)
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
    label, prob = classify(current_app, path, image, [(c.x, c.y) for c in clicks], settings.bubble_radius)
    return jsonify(class_text=class_text_in_study(study.id, label), probability=prob,
                   correct=label == stimulus.class_label)


@bp.get("/participant/trials/<int:trial_id>/image")
def trial_image(trial_id: int):  # noqa: ANN201
    """The image of one of the participant's trials up to the current one (no peeking ahead)."""
    if preview.active():
        _, settings, stimulus = preview.trial_stimulus(trial_id)
        return send_stimulus(current_app, stimulus, settings.display)
    p = current_participant()
    trial = own_trial(p, trial_id)
    if trial.index > p.current_index:
        raise ApiError(404, "no such trial for this participant", "trial_id")
    s = db.session()
    study = s.get(Study, p.study_id)
    settings = study_settings(study, s.get(Condition, p.condition_id) if p.condition_id else None)
    return send_stimulus(current_app, s.get(Stimulus, trial.stimulus_id), settings.display)


@bp.get("/stimuli/<int:stimulus_id>/image")
def stimulus_image(stimulus_id: int):  # noqa: ANN201
    """Any stimulus's image by its id, for a logged-in researcher (dashboards, previews)."""
    if session.get("researcher_id") is None:
        raise ApiError(401, "a researcher login is required", None)
    stimulus = db.session().get(Stimulus, stimulus_id) if 1 <= stimulus_id <= MAX_ID else None
    if stimulus is None:
        raise ApiError(404, "no such stimulus", "stimulus_id")
    return send_stimulus(current_app, stimulus)
