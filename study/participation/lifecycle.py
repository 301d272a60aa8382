"""A participant's life cycle: start (study/participation/database.py and preview.py, which
differ), next trial, answer, events, complete, and the image of a shown trial.

Each step is a function over a `Ledger`, the place where the participant's state lives: the
database (`DatabaseLedger`: every answer stored once) or a researcher's preview
(`PreviewLedger`: the state travels in the signed session cookie, nothing is stored). The steps
and their rules are the same for both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from study.errors import ApiError
from study.participation import scoring
from study.participation.rules import (
    TOKEN_HEADER,
    AnswerFields,
    answer_fields,
    completion_redirect,
    ending_code,
    finishing_ending,
    judge,
    settings_from_text,
    trial_exposure,
    uses_staircase,
)
from study.response_store import Context, NewResponse, Participation, Stored
from study.settings import StudySettings
from study.tables import Stimulus, Study
from study.validation import EventIn


@dataclass(frozen=True)
class CurrentTrial:
    """The trial a participant is at, as the ledger holds it; `exposure_ms` is the stored one
    once the trial was served (`served`)."""

    study: Study
    settings: StudySettings
    id: int
    index: int
    kind: str
    stimulus: Stimulus
    n_trials: int
    staircase: dict[str, Any]
    served: bool
    exposure_ms: float | None


@dataclass(frozen=True)
class ShownTrial:
    """A trial to show: what the page needs to run it."""

    study: Study
    settings: StudySettings
    id: int
    index: int
    kind: str
    exposure_ms: float | None
    stimulus: Stimulus
    n_trials: int


@dataclass(frozen=True)
class Finished:
    """No trial left: the participant is to complete."""

    n_trials: int
    current_index: int


@dataclass(slots=True)
class Answered:
    """The result of an answer: `created` False for a resend of a stored answer."""

    response_id: int | None
    trial_id: int
    correct: bool | None
    feedback: dict[str, Any]
    next_index: int
    created: bool


@dataclass(frozen=True)
class StoredAnswer:
    """An answer already stored under a client UUID."""

    id: int | None
    participant_id: int
    trial_id: int
    correct: bool | None
    feedback: dict[str, Any]


@dataclass(frozen=True)
class Progress:
    """What completing needs to know."""

    study: Study
    settings: StudySettings
    current_index: int
    n_trials: int
    platform: str
    external_session_id: str | None
    catch_failures: int = 0  # catch trials answered wrongly


@dataclass(frozen=True)
class Completed:
    completion_code: str | None
    redirect_url: str | None
    ending: str = "completed"  # a key of rules.ENDINGS: completed, or why screened out


@dataclass(frozen=True)
class TrialStimulus:
    """A trial's study, settings and stimulus, with where the trial and participant are."""

    study: Study
    settings: StudySettings
    stimulus: Stimulus
    index: int
    current_index: int


# (the participant's unchanging part, store(participant_id, response, sql_scoring) -> Stored | None)
OneTrip = tuple[Participation, Callable[[int, NewResponse, dict[str, Any]], Stored | None]]


class Ledger(Protocol):
    """Where one participant's state is kept. Reads raise ApiError(401) for an unknown
    participant."""

    preview: bool  # True: a researcher's preview, which stores nothing

    def current_trial(self) -> CurrentTrial | Finished: ...

    def mark_served(self, trial: CurrentTrial, exposure_ms: float | None) -> None: ...

    def context(self) -> Context | None:
        """The answer context (current trial, settings as JSON text); None: unknown token."""

    def one_trip(self) -> OneTrip | None:
        """Where this ledger can store an answer in one round trip: the participant's unchanging
        part and the function that stores (`store(participant_id, response, sql_scoring)`:
        the stored answer, or None when nothing was stored); else None."""

    def store(self, ctx: Context, response: NewResponse,
              staircase: dict[str, Any] | None) -> tuple[int | None] | None:
        """Store the answer to the context's trial and advance; (response id,), or None when
        nothing was stored because another request stored this UUID or answered the trial."""

    def stored_answer(self, client_uuid: str) -> StoredAnswer | None: ...

    def trial_answered(self, trial_id: int) -> bool: ...

    def trial_index(self, trial_id: int, participant_id: int) -> int | None: ...

    def trial_stimulus(self, trial_id: int) -> TrialStimulus | None: ...

    def own_trials(self, trial_ids: set[int]) -> set[int]: ...

    def add_events(self, events: list[EventIn], now: dt.datetime) -> int: ...

    def progress(self) -> Progress: ...

    def mark_completed(self, now: dt.datetime, status: str = "completed") -> None:
        """Record the end: `status` completed or screened_out (once; a repeat changes nothing)."""


def next_trial(ledger: Ledger) -> ShownTrial | Finished:
    """The participant's current trial; the first time it is served, its exposure is fixed."""
    cur = ledger.current_trial()
    if isinstance(cur, Finished):
        return cur
    exposure = cur.exposure_ms
    if not cur.served:
        exposure = trial_exposure(cur.study.task, cur.kind, cur.settings, cur.staircase)
        ledger.mark_served(cur, exposure)
    return ShownTrial(cur.study, cur.settings, cur.id, cur.index, cur.kind, exposure, cur.stimulus,
                      cur.n_trials)


def answer(ledger: Ledger, client_uuid: str, trial_id: int, body: dict[str, Any]) -> Answered:
    """Validate an answer to `trial_id` and store it once with the participant's progress (and
    staircase). A resend of a stored answer gets the stored result; an answer to another trial
    than the current one is refused (404 not this participant's, 409 not now)."""
    quick = _answer_in_one_trip(ledger, client_uuid, trial_id, body)
    if quick is not None:
        return quick
    ctx = ledger.context()
    if ctx is None:
        raise ApiError(401, "unknown participant token", TOKEN_HEADER)
    if ctx.trial_id != trial_id:
        return _not_current(ledger, ctx, client_uuid, trial_id)
    settings = settings_from_text(ctx.settings_json, ctx.condition_json)
    fields = answer_fields(ctx.task, settings, body)
    judged = judge(ctx.task, ctx.kind, ctx.source, fields.answer, settings, ctx.staircase)
    exposure = fields.exposure_ms if fields.exposure_ms is not None else ctx.exposure_ms
    response = _new_response(trial_id, client_uuid, fields, exposure, judged.correct, judged.feedback)
    receipt = ledger.store(ctx, response, judged.staircase)
    if receipt is None:
        return _lost_race(ledger, ctx, client_uuid, trial_id)
    return Answered(receipt[0], trial_id, judged.correct, judged.feedback, ctx.current_index + 1, True)


def _new_response(trial_id: int, client_uuid: str, fields: AnswerFields, exposure_ms: float | None,
                  correct: bool | None, feedback: dict[str, Any]) -> NewResponse:
    return NewResponse(
        trial_id=trial_id, client_uuid=client_uuid, answer=fields.answer, correct=correct,
        confidence=fields.confidence, rt_ms=fields.rt_ms, exposure_ms=exposure_ms,
        feedback=feedback, client_sent_at=fields.client_sent_at, clicks=fields.clicks,
    )


def _answer_in_one_trip(ledger: Ledger, client_uuid: str, trial_id: int,
                        body: dict[str, Any]) -> Answered | None:
    """The common case in one database round trip, where the ledger can (PostgreSQL): a valid
    answer to the current trial of a study without a staircase, scored by the statement from
    `scoring`'s definition. None when it does not apply or stored nothing; `answer`'s general
    path then gives the exact result (a resend's stored result, 409, 404, the field at fault)."""
    trip = ledger.one_trip()
    if trip is None:
        return None
    who, store = trip
    settings = settings_from_text(who.settings_json, who.condition_json)
    if uses_staircase(who.task, settings):
        return None  # the staircase's next state is computed in Python from the stored one
    try:
        fields = answer_fields(who.task, settings, body)
    except ApiError:
        return None  # refused on the general path, which checks first whether this is a resend
    response = _new_response(trial_id, client_uuid, fields, fields.exposure_ms, None, {})
    stored = store(who.id, response, scoring.sql_parameters(who.task, settings.practice_feedback))
    if stored is None:
        return None
    return Answered(stored.id, trial_id, stored.correct, stored.feedback, stored.next_index, True)


def _lost_race(ledger: Ledger, ctx: Context, client_uuid: str, trial_id: int) -> Answered:
    """Nothing was stored because a concurrent request stored this UUID or answered this trial
    first: the stored result for a resend, 409 for a rival answer."""
    stored = ledger.stored_answer(client_uuid)
    if stored is not None:
        return _repeat(stored, ctx.id, ctx.current_index + 1)
    if ledger.trial_answered(trial_id):
        raise ApiError(409, f"trial {trial_id} has already been answered", "trial_id")
    # Neither: a constraint this step does not expect failed. Nothing was stored, and the
    # client's outbox will retry; surface it as a server error rather than a refusal.
    raise RuntimeError(f"response to trial {trial_id} was refused by the database")


def _not_current(ledger: Ledger, ctx: Context, client_uuid: str, trial_id: int) -> Answered:
    """An answer to a trial other than the current one: a resend of a stored answer gets the
    stored result; anything else is refused (404: not this participant's; 409: not now)."""
    stored = ledger.stored_answer(client_uuid)
    if stored is not None:
        return _repeat(stored, ctx.id, ctx.current_index)
    index = ledger.trial_index(trial_id, ctx.id)
    if index is None:
        raise ApiError(404, "no such trial for this participant", "trial_id")
    if index < ctx.current_index:
        raise ApiError(409, f"trial {trial_id} has already been answered", "trial_id")
    raise ApiError(
        409,
        f"trial {trial_id} is not the current trial (the current index is {ctx.current_index})",
        "trial_id",
    )


def _repeat(stored: StoredAnswer, participant_id: int, next_index: int) -> Answered:
    if stored.participant_id != participant_id:
        raise ApiError(409, "this client_uuid belongs to another response", "client_uuid")
    return Answered(stored.id, stored.trial_id, stored.correct, stored.feedback, next_index, False)


def record_events(ledger: Ledger, events: list[EventIn], now: dt.datetime) -> int:
    """Store browser events (blur, focus, ...); each named trial must be the participant's."""
    trial_ids = {e.trial_id for e in events if e.trial_id is not None}
    if trial_ids:
        own = ledger.own_trials(trial_ids)
        for i, e in enumerate(events):
            if e.trial_id is not None and e.trial_id not in own:
                raise ApiError(404, "no such trial for this participant", f"events[{i}].trial_id")
    return ledger.add_events(events, now)


def complete(ledger: Ledger, now: dt.datetime) -> Completed:
    """Mark the participant completed once every trial is answered, or screened out when more
    catch trials were wrong than the study allows; the code of that ending and where the debrief
    sends them."""
    p = ledger.progress()
    if p.current_index < p.n_trials:
        left = p.n_trials - p.current_index
        raise ApiError(409, f"{left} of {p.n_trials} trials are not answered yet", None)
    ending = finishing_ending(p.settings, p.catch_failures)
    ledger.mark_completed(now, "completed" if ending == "completed" else "screened_out")
    code = ending_code(ending, p.settings, p.study.completion_code, p.study.screened_out_code)
    url = completion_redirect(p.settings, code, p.platform, p.external_session_id) if code else None
    return Completed(code, url, ending)


def shown_stimulus(ledger: Ledger, trial_id: int) -> TrialStimulus:
    """A trial's stimulus, for trials up to the current one (no peeking ahead)."""
    found = ledger.trial_stimulus(trial_id)
    if found is None or found.index > found.current_index:
        raise ApiError(404, "no such trial for this participant", "trial_id")
    return found
