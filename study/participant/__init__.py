"""Participant pages: the study link (consent), the task page (instructions, practice, trials,
debrief) and the refusals (closed, full, already taken part). The task itself runs in the
browser (study/static/js) against the JSON API."""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from study import db, i18n
from study.participation.database import refusal_of, settings_of
from study.participation.devices import requirements
from study.participation.preview import PREVIEW_TOKEN
from study.participation.rules import PLATFORM_IDS, screen_out_redirect, screened_out_ending
from study.tables import Condition, Participant, Study, utcnow

bp = Blueprint("participant", __name__)

URL_PARAMS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "workerId", "assignmentId", "hitId")


@bp.context_processor
def _language() -> dict[str, str]:
    """The page's language (`<html lang>`) and its scripts' texts (`<body data-strings>`)."""
    language = i18n.current()
    return {"page_language": language, "ui_strings": i18n.js_strings(language)}


@bp.get("/healthz")
def healthz():
    """No database work: the benchmarks' baseline route."""
    return jsonify(ok=True)


def _message(title: str, text: str, status: int, resume: dict | None = None):
    page = render_template("participant/message.html", title=title, text=text, resume=resume)
    return page, status


def _platform(args: dict[str, str]) -> str:
    if args.get("PROLIFIC_PID"):
        return "prolific"
    if args.get("workerId"):
        return "mturk"
    return "direct"


def _preview_wanted() -> bool:
    return request.args.get("preview") == "1" and session.get("researcher_id") is not None


def _session_participant(study: Study) -> Participant | None:
    token = (session.get("participants") or {}).get(study.slug)
    if not token:
        return None
    return db.session().scalar(
        select(Participant).where(Participant.token == token, Participant.study_id == study.id)
    )


@bp.get("/s/<slug>")
def landing(slug: str):
    """The link participants follow from Prolific or MTurk: consent, or where they left off."""
    study = db.session().scalar(select(Study).where(Study.slug == slug))
    preview = _preview_wanted()
    if study is None or (study.status == "draft" and not preview):
        return _message(_("Study not found"), _("There is no study at this address."), 404)
    settings = settings_of(study, None)
    i18n.use(settings.language)
    if not preview:
        mine = _session_participant(study)
        if mine is not None and mine.status == "screened_out":
            return _screened_out(study, mine)
        if mine is not None:
            return redirect(url_for("participant.task", slug=slug))
    args = {k: request.args.get(k, "")[:128] for k in URL_PARAMS if request.args.get(k)}
    platform = _platform(args)
    if not preview:
        why = refusal_of(db.session(), study, utcnow())
        if why is not None:
            status = why[0]
            if study.status in ("paused", "closed"):
                return _message(
                    _("This study is paused") if study.status == "paused"
                    else _("This study is closed"),
                    _("It is not accepting participants at the moment. Please return it on "
                      "your platform; thank you for your interest."),
                    410,
                )
            return _message(
                _("This study is full"),
                _("All places have been taken. Please return it on your platform; thank you "
                  "for your interest."),
                status,
            )
        if platform == "mturk" and args.get("assignmentId") == "ASSIGNMENT_ID_NOT_AVAILABLE":
            return _message(
                _("Please accept the HIT first"),
                _("This is a preview of the task. Accept the HIT on MTurk to take part."),
                200,
            )
        ext_key = PLATFORM_IDS[platform][0]
        before = ext_key and db.session().scalar(
            select(Participant).where(
                Participant.study_id == study.id,
                Participant.platform == platform,
                Participant.external_id == args[ext_key],
            )
        )
        earlier = before.status if before else None
        if earlier == "screened_out":
            return _screened_out(study, before)
        if earlier:
            # The browser that started (and lost the reply) resumes from this page by its
            # start key; see static/js/resume.js.
            resume = (
                {"slug": slug, "start_json": json.dumps({"platform": platform, **args})}
                if earlier == "started"
                else None
            )
            return _message(
                _("You have already taken part"),
                _("Our records show that you have already started this study, and each person "
                  "may take part only once. If you believe this is a mistake, please contact "
                  "the researchers through your platform."),
                409,
                resume,
            )
    start = {"platform": platform, **args}
    return render_template(
        "participant/consent.html",
        study=study,
        start_json=json.dumps(start),
        preview=preview,
        requirements=requirements(settings.devices),
        consent_text=settings.texts.consent or study.consent_text,
    )


def _screened_out(study: Study, p: Participant):
    """The page of a participant stored as screened out, with the way back to the platform and
    the screen-out code of their ending where it has one. Screened out at the start (the device
    did not qualify): what the study needs and why this device does not (as the start found it,
    kept in the session cookie). Screened out at the end (failed attention checks): that the
    study has ended for them."""
    settings = settings_of(study, None, p.design_hash)
    i18n.use(settings.language)
    ending = screened_out_ending(p.n_trials)
    code, back = screen_out_redirect(ending, settings, study.completion_code,
                                     study.screened_out_code, p.platform, p.external_session_id)
    device = ending == "incompatible_device"
    page = render_template(
        "participant/screened_out.html",
        study=study,
        ending=ending,
        requirements=requirements(settings.devices) if device else (),
        reasons=(session.get("screened_out") or {}).get(study.slug, ()) if device else (),
        platform=p.platform,
        code=code,
        redirect_url=back,
    )
    return page, 403


@bp.get("/s/<slug>/task")
def task(slug: str):
    """The task page; the browser resumes at the participant's current trial."""
    study = db.session().scalar(select(Study).where(Study.slug == slug))
    if study is None:
        return _message(_("Study not found"), _("There is no study at this address."), 404)
    preview = _preview_wanted() and (session.get("preview") or {}).get("slug") == slug
    if preview:
        token = PREVIEW_TOKEN
        condition_id = session["preview"].get("condition_id")
        design_hash = None
    else:
        p = _session_participant(study)
        if p is None or p.status == "screened_out":
            return redirect(url_for("participant.landing", slug=slug))
        token = p.token
        condition_id = p.condition_id
        design_hash = p.design_hash
    condition = db.session().get(Condition, condition_id) if condition_id else None
    # The participant's design version: an edit of a live study (its language, its texts)
    # leaves the pages of those who started before it as they were.
    settings = settings_of(study, condition, design_hash)
    # The study's language, as on the consent page (which comes before the condition).
    i18n.use(settings_of(study, None, design_hash).language)
    return render_template(
        "participant/task.html",
        study=study,
        token=token,
        preview=preview,
        redirect_platform=settings.redirect_platform,
        n_practice=settings.n_practice,
        instructions_text=settings.texts.instructions or study.instructions_text,
    )
