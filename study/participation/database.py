"""Participants stored in the database: starting one, and the `DatabaseLedger` that the life
cycle's steps (study/participation/lifecycle.py) read and write.

Answers take the hot path of study/response_store.py (a pooled connection, no ORM session,
compare-and-set on the participant's index); the other steps use the request's ORM session.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from flask_babel import force_locale
from sqlalchemy import Connection, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from study import db, response_store
from study.assignment import StimulusRef, build_trial_plan, choose_condition
from study.errors import ApiError
from study.participation import design
from study.participation.devices import Shortfall, device_class, shortfalls
from study.participation.lifecycle import (
    CurrentTrial,
    Finished,
    OneTrip,
    Progress,
    StoredAnswer,
    TrialStimulus,
)
from study.participation.rules import (
    PLATFORM_IDS,
    TOKEN_HEADER,
    ExternalIds,
    active_since,
    initial_staircase,
    merged_settings,
    refusal,
)
from study.response_store import Context, NewResponse, Participation, Stored
from study.settings import StudySettings
from study.tables import (
    BrowserEvent,
    Condition,
    Participant,
    Response,
    Stimulus,
    Study,
    Trial,
    utcnow,
)
from study.validation import MAX_ID, EventIn, Screen


def settings_of(study: Study, condition: Condition | None,
                design_hash: str | None = None) -> StudySettings:
    """The settings a participant is served: those of its design version `design_hash` when
    one is recorded (an edited study keeps serving earlier participants what they started
    with), else the study's; the condition's overrides on top."""
    stored = design.version_settings(db.session(), design_hash)
    return merged_settings(stored if stored is not None else study.settings,
                           condition.settings if condition is not None else None)


def taking_part(s: Session, study_id: int, since: dt.datetime) -> int:
    """Participants of the study who completed, or started and were seen after `since`."""
    return s.scalar(
        select(func.count())
        .select_from(Participant)
        .where(
            Participant.study_id == study_id,
            or_(
                Participant.status == "completed",
                (Participant.status == "started") & (Participant.last_seen_at >= since),
            ),
        )
    )


def refusal_of(s: Session, study: Study | None, now: dt.datetime) -> tuple[int, str] | None:
    """Why a new participant may not start `study` now (HTTP status, message), or None."""
    if study is None:
        return refusal(None, None, None)
    settings = merged_settings(study.settings, None)
    why = refusal(study.status, settings, None)
    if why is not None or settings.max_participants is None:
        return why
    return refusal(study.status, settings, taking_part(s, study.id, active_since(settings, now)))


@dataclass(frozen=True)
class Started:
    """A started (or resumed) participant, as the start call answers."""

    token: str
    public_id: str
    condition: str | None
    n_trials: int
    current_index: int
    created: bool


@dataclass(frozen=True)
class ScreenedOut:
    """A participant whose device does not meet the study's requirements, stored with the status
    `screened_out`, no trials and no answers; `reasons` say why, `field` what told (the
    User-Agent header or the browser's screen report)."""

    token: str
    reasons: tuple[str, ...]
    field: str


def start(slug: str, platform: str, ids: ExternalIds, start_key: str | None,
          user_agent: str | None, now: dt.datetime,
          screen: Screen | None = None) -> Started | ScreenedOut:
    """A new participant: refusals first, then the device check (devices.py), then condition,
    seed and the whole trial list, in one transaction. The same browser's retry (same start key,
    not finished) resumes; anyone else with the same external id is refused (409)."""
    s = db.session()
    # The study row is locked (PostgreSQL) until this start commits, so that simultaneous starts
    # see each other: conditions stay balanced and a full study is not overfilled.
    study = s.scalar(select(Study).where(Study.slug == slug).with_for_update())
    why = refusal_of(s, study, now)
    if why:
        raise ApiError(why[0], why[1], None)
    if ids.id is not None:
        existing = _existing(s, study.id, platform, ids.id)
        if existing is not None:
            return _resumed(s, existing, start_key, platform)
    base = merged_settings(study.settings, None)
    device = device_class(user_agent, screen.touch_points if screen is not None else None)
    with force_locale(base.language):  # the screened-out page shows these reasons
        by_device = shortfalls(base.devices, device, screen)
    if by_device:
        return _screened_out(s, study.id, platform, ids, start_key, user_agent, now, by_device)
    condition_id = choose_condition(s, study.id, now, base.active_window_minutes)
    condition = s.get(Condition, condition_id) if condition_id is not None else None
    settings = settings_of(study, condition)
    seed = secrets.randbelow(2**31 - 1)
    plan = plan_of(s, study.id, settings, seed)
    if not plan:
        raise ApiError(410, "this study has no stimuli yet", None)
    p = Participant(
        study_id=study.id, token=secrets.token_urlsafe(32), public_id=str(uuid.uuid4()),
        platform=platform, external_id=ids.id, external_study_id=ids.study_id,
        external_session_id=ids.session_id, status="started", condition_id=condition_id,
        seed=seed, current_index=0, n_trials=len(plan), start_key=start_key,
        staircase=initial_staircase(settings), user_agent=user_agent, started_at=now,
        last_seen_at=now, design_hash=design.record_version(s, study),
    )
    try:
        s.add(p)
        s.flush()
        s.execute(insert(Trial), [
            {"participant_id": p.id, "index": i, "stimulus_id": t.stimulus_id, "kind": t.kind}
            for i, t in enumerate(plan)
        ])
        s.commit()
    except IntegrityError:
        s.rollback()  # the same external id started at the same moment in another request
        existing = _existing(s, study.id, platform, ids.id) if ids.id is not None else None
        if existing is None:
            raise
        return _resumed(s, existing, start_key, platform)
    return Started(p.token, p.public_id, condition.name if condition is not None else None,
                   p.n_trials, p.current_index, created=True)


def _screened_out(s: Session, study_id: int, platform: str, ids: ExternalIds,
                  start_key: str | None, user_agent: str | None, now: dt.datetime,
                  by_device: list[Shortfall]) -> ScreenedOut:
    """Store the participant as screened out (the researcher counts them; a platform id cannot
    start again); the same id screened out or started at the same moment is refused (409)."""
    p = Participant(
        study_id=study_id, token=secrets.token_urlsafe(32), public_id=str(uuid.uuid4()),
        platform=platform, external_id=ids.id, external_study_id=ids.study_id,
        external_session_id=ids.session_id, status="screened_out", condition_id=None, seed=0,
        current_index=0, n_trials=0, start_key=start_key, staircase={}, user_agent=user_agent,
        started_at=now, last_seen_at=now,
    )
    try:
        s.add(p)
        s.commit()
    except IntegrityError:
        s.rollback()
        existing = _existing(s, study_id, platform, ids.id) if ids.id is not None else None
        if existing is None:
            raise
        return _resumed(s, existing, start_key, platform)  # refuses: it is not a started one
    return ScreenedOut(p.token, tuple(f.reason for f in by_device), by_device[0].field)


def plan_of(s: Session, study_id: int, settings: StudySettings, seed: int) -> list:
    """The trial list of a participant with this seed (assignment.build_trial_plan)."""
    rows = s.execute(select(Stimulus.id, Stimulus.role).where(Stimulus.study_id == study_id))
    return build_trial_plan([StimulusRef(i, r) for i, r in rows], settings, seed)


def _existing(s: Session, study_id: int, platform: str, ext: str) -> Participant | None:
    return s.scalar(select(Participant).where(
        Participant.study_id == study_id, Participant.platform == platform,
        Participant.external_id == ext,
    ))


def _resumed(s: Session, p: Participant, start_key: str | None, platform: str) -> Started:
    if start_key is None or p.start_key != start_key or p.status != "started":
        raise ApiError(409, "this participant has already taken part in this study",
                       PLATFORM_IDS[platform][0])
    condition = s.get(Condition, p.condition_id) if p.condition_id is not None else None
    return Started(p.token, p.public_id, condition.name if condition is not None else None,
                   p.n_trials, p.current_index, created=False)


class DatabaseLedger:
    """The stored participant with `token`. `participations`: the worker's cache of what never
    changes for a participant (study/response_store.participation). Use as a context manager:
    the answer steps hold a pooled connection until the end."""

    preview = False

    def __init__(self, token: str, participations: dict[str, Participation]) -> None:
        self.token = token
        self.participations = participations
        self._conn: Connection | None = None
        self._participant: Participant | None = None

    def __enter__(self) -> DatabaseLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = response_store.connect()
        return self._conn

    def _me(self, for_update: bool = False) -> Participant:
        if self._participant is not None and not for_update:
            return self._participant
        stmt = select(Participant).where(Participant.token == self.token)
        if for_update:
            stmt = stmt.with_for_update()
        p = db.session().scalar(stmt)
        if p is None:
            raise ApiError(401, "unknown participant token", TOKEN_HEADER)
        if p.status == "screened_out" and p.n_trials == 0:  # by the device check at the start
            raise ApiError(403, "this participant was screened out of the study", TOKEN_HEADER)
        self._participant = p
        return p

    def _settings(self, p: Participant) -> tuple[Study, StudySettings]:
        s = db.session()
        study = s.get(Study, p.study_id)
        condition = s.get(Condition, p.condition_id) if p.condition_id else None
        return study, settings_of(study, condition, p.design_hash)

    # next trial

    def current_trial(self) -> CurrentTrial | Finished:
        p = self._me()
        if p.current_index >= p.n_trials:
            return Finished(p.n_trials, p.current_index)
        trial, stimulus, study = db.session().execute(
            select(Trial, Stimulus, Study)
            .join(Stimulus, Trial.stimulus_id == Stimulus.id)
            .join(Study, Study.id == Stimulus.study_id)
            .where(Trial.participant_id == p.id, Trial.index == p.current_index)
        ).one()
        condition = db.session().get(Condition, p.condition_id) if p.condition_id else None
        return CurrentTrial(study, settings_of(study, condition, p.design_hash), trial.id,
                            trial.index, trial.kind, stimulus, p.n_trials, p.staircase,
                            trial.served_at is not None, trial.exposure_ms)

    def mark_served(self, trial: CurrentTrial, exposure_ms: float | None) -> None:
        s = db.session()
        row = s.get(Trial, trial.id)
        row.exposure_ms = exposure_ms
        row.served_at = self._me().last_seen_at = utcnow()
        s.commit()

    # answer

    def context(self) -> Context | None:
        return response_store.read_context(self.conn, self.token)

    def one_trip(self) -> OneTrip | None:
        """On PostgreSQL: the participant (cached per worker) and `_store_current`."""
        if self.conn.dialect.name != "postgresql":
            return None
        who = response_store.participation(self.conn, self.token, self.participations)
        return (who, self._store_current) if who is not None else None

    def _store_current(self, participant_id: int, response: NewResponse,
                       sql_scoring: dict[str, Any]) -> Stored | None:
        try:
            return response_store.store_current(self.conn, participant_id, response, sql_scoring,
                                                utcnow())
        except IntegrityError:
            return None

    def store(self, ctx: Context, response: NewResponse,
              staircase: dict[str, Any] | None) -> tuple[int | None] | None:
        try:
            response_id = response_store.store(self.conn, ctx.id, ctx.current_index, response,
                                               staircase, utcnow())
        except IntegrityError:
            return None  # the same UUID, or another answer to this trial, is stored
        return (response_id,) if response_id is not None else None

    def stored_answer(self, client_uuid: str) -> StoredAnswer | None:
        row = response_store.stored_result(self.conn, client_uuid)
        return StoredAnswer(*row) if row is not None else None

    def trial_answered(self, trial_id: int) -> bool:
        return response_store.trial_answered(self.conn, trial_id)

    def trial_index(self, trial_id: int, participant_id: int) -> int | None:
        return response_store.trial_index(self.conn, trial_id, participant_id)

    # images, events, completion

    def trial_stimulus(self, trial_id: int) -> TrialStimulus | None:
        p = self._me()
        s = db.session()
        trial = s.get(Trial, trial_id) if 1 <= trial_id <= MAX_ID else None
        if trial is None or trial.participant_id != p.id:
            return None
        study, settings = self._settings(p)
        return TrialStimulus(study, settings, s.get(Stimulus, trial.stimulus_id), trial.index,
                             p.current_index)

    def own_trials(self, trial_ids: set[int]) -> set[int]:
        p = self._me()
        return set(db.session().scalars(
            select(Trial.id).where(Trial.participant_id == p.id, Trial.id.in_(trial_ids))
        ))

    def add_events(self, events: list[EventIn], now: dt.datetime) -> int:
        p = self._me()
        s = db.session()
        s.execute(insert(BrowserEvent), [
            {"participant_id": p.id, "trial_id": e.trial_id, "kind": e.kind, "t_ms": e.t_ms,
             "detail": e.detail, "received_at": now}
            for e in events
        ])
        s.commit()
        return len(events)

    def progress(self) -> Progress:
        p = self._me(for_update=True)
        study, settings = self._settings(p)
        failures = 0
        if settings.max_catch_failures is not None:  # counted only where a study screens out
            failures = db.session().scalar(
                select(func.count(Response.id)).join(Trial, Trial.id == Response.trial_id)
                .where(Response.participant_id == p.id, Trial.kind == "catch",
                       Response.correct.is_(False))
            ) or 0
        return Progress(study, settings, p.current_index, p.n_trials, p.platform,
                        p.external_session_id, failures)

    def mark_completed(self, now: dt.datetime, status: str = "completed") -> None:
        p = self._me()
        if p.status not in ("completed", "screened_out"):
            p.status = status
            p.completed_at = p.last_seen_at = now
            db.session().commit()
