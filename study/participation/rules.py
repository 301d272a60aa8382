"""The participant's rules, as pure functions of their arguments (no database, no request).

Platforms and the ids they send, refusals to start, where the debrief sends a participant, how
long a trial's image is shown, which fields an answer needs, and the staircase's next step.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from study import staircase
from study.errors import ApiError
from study.participation.scoring import score
from study.settings import StudySettings
from study.validation import ClickIn, get_int, get_number, get_str, parse_clicks

# The secret that identifies a participant (the API's request header).
TOKEN_HEADER = "X-Participant-Token"
PLATFORM_IDS = {
    # platform: (external id, external study id, external session id) as URL/body keys
    "prolific": ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID"),
    "mturk": ("workerId", "hitId", "assignmentId"),
    "direct": (None, None, None),
}
PROLIFIC_COMPLETE_URL = "https://app.prolific.com/submissions/complete?cc={code}"
CLOSED_STATUSES = ("paused", "closed")


@functools.lru_cache(maxsize=256)
def settings_from_text(study_json: str, condition_json: str | None) -> StudySettings:
    """A study's settings merged with its condition's, from their JSON texts; cached because
    every request needs them and the texts are the database's own."""
    settings = StudySettings.from_dict(json.loads(study_json))
    return settings.merged(json.loads(condition_json) if condition_json else {})


def merged_settings(study: dict[str, Any], condition: dict[str, Any] | None) -> StudySettings:
    """Validated, merged settings of a study (and condition) as stored."""
    return settings_from_text(json.dumps(study, sort_keys=True),
                              json.dumps(condition or {}, sort_keys=True))


def refusal(status: str | None, settings: StudySettings | None,
            n_taking_part: int | None) -> tuple[int, str] | None:
    """Why a new participant may not start a study of this `status` (None: no such study), with
    `n_taking_part` participants completed or recently active: (HTTP status, message), or None."""
    if status is None or status == "draft":
        return 404, "no such study"
    if status in CLOSED_STATUSES:
        return 410, f"this study is {status} and does not accept participants now"
    cap = settings.max_participants if settings is not None else None
    if cap is not None and n_taking_part is not None and n_taking_part >= cap:
        return 410, "this study is full"
    return None


def active_since(settings: StudySettings, now: dt.datetime) -> dt.datetime:
    """Participants seen after this moment count as taking part (caps and counterbalancing)."""
    return now - dt.timedelta(minutes=settings.active_window_minutes)


@dataclass(frozen=True)
class ExternalIds:
    """Who the platform says the participant is: (id, study id, session id); Nones for direct."""

    id: str | None = None
    study_id: str | None = None
    session_id: str | None = None


def external_ids(platform: str, values: dict[str, Any]) -> ExternalIds:
    """The external ids of a start request on `platform` (a key of PLATFORM_IDS)."""
    id_key, study_key, session_key = PLATFORM_IDS[platform]
    if id_key is None:
        return ExternalIds()
    ids = ExternalIds(get_str(values, id_key, required=True, max_len=128),
                      get_str(values, study_key, max_len=128),
                      get_str(values, session_key, max_len=128))
    if platform == "mturk" and ids.session_id == "ASSIGNMENT_ID_NOT_AVAILABLE":
        raise ApiError(400, "accept the HIT before starting", "assignmentId")
    return ids


def completion_redirect(settings: StudySettings, code: str, platform: str,
                        external_session_id: str | None) -> str | None:
    """Where the debrief sends the participant: back to the platform they came from, unless
    the study redirects nowhere (`redirect_platform: none`)."""
    if settings.redirect_platform == "none":
        return None
    if platform == "prolific":
        return PROLIFIC_COMPLETE_URL.format(code=quote(code, safe=""))
    if platform == "mturk":
        query = urlencode({"assignmentId": external_session_id or "", "completion_code": code})
        return f"{settings.mturk_submit_url}?{query}"
    return None


# How a participant's time in a study ends, and the type of the platform code for it (the
# code_type of Prolific's study object, `completion_codes`). Every end but "completed" screens
# the participant out.
ENDINGS = {
    "completed": "COMPLETED",
    "failed_attention_check": "FAILED_ATTENTION_CHECK",
    "incompatible_device": "INCOMPATIBLE_DEVICE",
    "no_consent": "NO_CONSENT",
}
SCREEN_OUTS = tuple(e for e in ENDINGS if e != "completed")


def ending_code(ending: str, settings: StudySettings, completion_code: str,
                screened_out_code: str | None) -> str | None:
    """The code a participant takes back to the platform for `ending` (a key of ENDINGS): the
    study's completion code, or the settings' code for that screen-out (`ending_codes`), else
    the study's screened_out_code; None when the study has none for it."""
    if ending not in ENDINGS:
        raise ValueError(f"ending: must be one of {', '.join(ENDINGS)} (got {ending!r})")
    if ending == "completed":
        return completion_code
    return getattr(settings.ending_codes, ending) or screened_out_code


def screen_out_redirect(ending: str, settings: StudySettings, completion_code: str,
                        screened_out_code: str | None, platform: str,
                        external_session_id: str | None) -> tuple[str | None, str | None]:
    """(code, where the participant is sent) for a screen-out `ending` (one of SCREEN_OUTS):
    what a page that screens a participant out shows and links to."""
    if ending not in SCREEN_OUTS:
        raise ValueError(f"ending: must be one of {', '.join(SCREEN_OUTS)} (got {ending!r})")
    code = ending_code(ending, settings, completion_code, screened_out_code)
    if code is None:
        return None, None
    return code, completion_redirect(settings, code, platform, external_session_id)


def screened_out_ending(n_trials: int) -> str:
    """Why a participant stored as screened_out was screened out: before any trial (no trial
    list: the device check at the start) or at the end (failed attention checks)."""
    return "incompatible_device" if n_trials == 0 else "failed_attention_check"


def finishing_ending(settings: StudySettings, catch_failures: int) -> str:
    """How a participant who answered every trial ends: screened out for failed attention checks
    when more catch trials were wrong than the study allows, else completed."""
    limit = settings.max_catch_failures
    if limit is not None and catch_failures > limit:
        return "failed_attention_check"
    return "completed"


def trial_exposure(task: str, kind: str, settings: StudySettings,
                   state: dict[str, Any]) -> float | None:
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


def initial_staircase(settings: StudySettings) -> dict[str, Any]:
    return staircase.initial_state(settings.staircase) if settings.staircase.enabled else {}


def uses_staircase(task: str, settings: StudySettings) -> bool:
    return task == "realfake" and settings.staircase.enabled


# Slots, not frozen, for what every submission builds: a frozen dataclass sets each field
# through object.__setattr__.
@dataclass(slots=True)
class AnswerFields:
    """The validated fields of an answer to one trial."""

    rt_ms: float
    exposure_ms: float | None
    client_sent_at: float | None
    answer: str | None
    confidence: int | None
    clicks: list[ClickIn]


def answer_fields(task: str, settings: StudySettings, body: dict[str, Any]) -> AnswerFields:
    """The validated fields of an answer to a `task` trial (ApiError names the field at fault)."""
    rt_ms = get_number(body, "rt_ms", required=True)
    exposure_ms = get_number(body, "exposure_ms")
    client_sent_at = get_number(body, "client_sent_at", hi=1e14)
    if task == "realfake":
        answer = get_str(body, "answer", required=True, choices=("real", "fake"))
        conf = settings.confidence
        confidence = get_int(body, "confidence", lo=conf.min, hi=conf.max)
        if conf.enabled and confidence is None:
            raise ApiError(400, "confidence is required in this study", "confidence")
        if body.get("clicks"):
            raise ApiError(400, "clicks belong to ClickMe trials", "clicks")
        return AnswerFields(rt_ms, exposure_ms, client_sent_at, answer, confidence, [])
    if body.get("answer") is not None:
        raise ApiError(400, "answer belongs to real-or-fake trials", "answer")
    clicks = parse_clicks(body.get("clicks"), budget=settings.click_budget)
    if len(clicks) < settings.min_clicks:
        raise ApiError(400, f"at least {settings.min_clicks} clicks are needed", "clicks")
    return AnswerFields(rt_ms, exposure_ms, client_sent_at, None, None, clicks)


@dataclass(slots=True)
class Judged:
    """An answer's consequences: whether it is right, what the participant is told, and the
    participant's next staircase state (None: unchanged)."""

    correct: bool | None
    feedback: dict[str, Any]
    staircase: dict[str, Any] | None


def judge(task: str, kind: str | None, source: str | None, answer: str | None,
          settings: StudySettings, state: dict[str, Any]) -> Judged:
    scored = score(task, kind, source, answer, settings.practice_feedback)
    step = None
    if kind == "main" and uses_staircase(task, settings):
        step = staircase.update(state, bool(scored.correct), settings.staircase)
    return Judged(scored.correct, scored.feedback, step)
