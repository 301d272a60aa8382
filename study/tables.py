"""The study's tables (SQLAlchemy 2.x typed ORM). One row per trial, one row per click.

Alembic migrations in study/migrations must match this metadata (a test compares them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

TASKS = ("clickme", "realfake")
STUDY_STATUSES = ("draft", "live", "paused", "closed")
PARTICIPANT_STATUSES = ("started", "completed", "returned", "screened_out")
TRIAL_KINDS = ("practice", "main", "catch")
SOURCES = ("real", "model")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {dict[str, Any]: JSON, dt.datetime: DateTime(timezone=True)}


class Researcher(Base):
    __tablename__ = "researchers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Login throttling (study/auth.py): consecutive wrong passwords, and the lock they caused.
    # In the database, so the limit holds across server workers and hosts.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None] = mapped_column()


class Study(Base):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(16))  # one of TASKS
    status: Mapped[str] = mapped_column(String(16), default="draft")  # one of STUDY_STATUSES
    # Validated task settings (study/settings.py): exposure_ms, staircase, bubble_radius,
    # click_budget, min_clicks, trials_per_participant, n_practice, n_catch, confidence,
    # feedback_classifier, max_participants, ...
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    completion_code: Mapped[str] = mapped_column(String(64))
    screened_out_code: Mapped[str | None] = mapped_column(String(64))
    consent_text: Mapped[str] = mapped_column(Text, default="")
    instructions_text: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("researchers.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    stimuli: Mapped[list[Stimulus]] = relationship(back_populates="study")
    conditions: Mapped[list[Condition]] = relationship(back_populates="study")


class Stimulus(Base):
    __tablename__ = "stimuli"
    __table_args__ = (UniqueConstraint("study_id", "stimulus_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    stimulus_key: Mapped[str] = mapped_column(String(128))  # the manifest's stimulus_id
    path: Mapped[str] = mapped_column(String(500))  # relative to the manifest's folder / STIMULI_ROOT
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))  # one of SOURCES
    model_name: Mapped[str | None] = mapped_column(String(64))
    class_label: Mapped[str] = mapped_column(String(128))
    # What a participant is told the image shows (the manifest's class_text); None: nothing
    # a person understands, so the page names no class.
    class_text: Mapped[str | None] = mapped_column(String(200))
    exemplar_id: Mapped[str | None] = mapped_column(String(128))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16), default="main")  # one of TRIAL_KINDS
    generation: Mapped[dict[str, Any]] = mapped_column(default=dict)  # guidance, seed, steps, ...

    study: Mapped[Study] = relationship(back_populates="stimuli")


class Condition(Base):
    __tablename__ = "conditions"
    __table_args__ = (UniqueConstraint("study_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # overrides of Study.settings

    study: Mapped[Study] = relationship(back_populates="conditions")


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (
        UniqueConstraint("study_id", "platform", "external_id"),
        Index("ix_participants_study_status", "study_id", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(64), unique=True)  # secret, for the API
    public_id: Mapped[str] = mapped_column(String(36), unique=True)  # uuid4, safe to show
    platform: Mapped[str] = mapped_column(String(16))  # prolific, mturk, direct
    external_id: Mapped[str | None] = mapped_column(String(128))  # PROLIFIC_PID or workerId
    external_study_id: Mapped[str | None] = mapped_column(String(128))  # STUDY_ID or hitId
    external_session_id: Mapped[str | None] = mapped_column(String(128))  # SESSION_ID or assignmentId
    # The browser's key for its start call: a retried start whose reply was lost gets the same
    # participant back instead of "already taken part".
    start_key: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="started")
    condition_id: Mapped[int | None] = mapped_column(ForeignKey("conditions.id"))
    seed: Mapped[int] = mapped_column(Integer)
    current_index: Mapped[int] = mapped_column(Integer, default=0)  # trials answered so far
    n_trials: Mapped[int] = mapped_column(Integer, default=0)  # length of the trial list
    staircase: Mapped[dict[str, Any]] = mapped_column(default=dict)  # server-side state
    user_agent: Mapped[str | None] = mapped_column(String(500))
    # The design version (DesignVersion.hash) the participant started under: its settings serve
    # the participant even after the study is edited.
    design_hash: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column()

    trials: Mapped[list[Trial]] = relationship(
        back_populates="participant", order_by="Trial.index"
    )


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("participant_id", "index"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    index: Mapped[int] = mapped_column(Integer)  # 0-based order of presentation
    stimulus_id: Mapped[int] = mapped_column(ForeignKey("stimuli.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="main")  # one of TRIAL_KINDS
    exposure_ms: Mapped[float | None] = mapped_column(Float)  # set when served (staircase)
    served_at: Mapped[dt.datetime | None] = mapped_column()

    participant: Mapped[Participant] = relationship(back_populates="trials")
    stimulus: Mapped[Stimulus] = relationship()
    response: Mapped[Response | None] = relationship(back_populates="trial", uselist=False)


class Response(Base):
    __tablename__ = "responses"
    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), unique=True
    )
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    client_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    answer: Mapped[str | None] = mapped_column(String(8))  # real / fake; None for ClickMe
    correct: Mapped[bool | None] = mapped_column(Boolean)
    confidence: Mapped[int | None] = mapped_column(Integer)
    rt_ms: Mapped[float | None] = mapped_column(Float)
    exposure_ms: Mapped[float | None] = mapped_column(Float)
    n_clicks: Mapped[int] = mapped_column(Integer, default=0)
    feedback: Mapped[dict[str, Any]] = mapped_column(default=dict)  # game feedback shown, etc.
    client_sent_at: Mapped[float | None] = mapped_column(Float)  # client epoch ms
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    trial: Mapped[Trial] = relationship(back_populates="response")
    clicks: Mapped[list[Click]] = relationship(back_populates="response", order_by="Click.order")


class Click(Base):
    __tablename__ = "clicks"
    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), index=True
    )
    order: Mapped[int] = mapped_column(Integer)
    x: Mapped[float] = mapped_column(Float)  # image coordinates in [0, 1], left to right
    y: Mapped[float] = mapped_column(Float)  # image coordinates in [0, 1], top to bottom
    t_ms: Mapped[float] = mapped_column(Float)  # ms since the image appeared
    stroke: Mapped[int] = mapped_column(Integer, default=0)  # points of one drag share a stroke

    response: Mapped[Response] = relationship(back_populates="clicks")


class BrowserEvent(Base):
    __tablename__ = "browser_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    trial_id: Mapped[int | None] = mapped_column(ForeignKey("trials.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))  # blur, focus, resize, fullscreen_enter, ...
    t_ms: Mapped[float | None] = mapped_column(Float)  # client performance.now()
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LoginFailure(Base):
    """One wrong researcher login from a client address: the per-address rate limit counts these
    in a sliding window (in the database, so that it holds across workers and hosts)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_address_at", "address", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DesignVersion(Base):
    """One version of a study design: its settings and stimulus set, keyed by their hash
    (study/participation/design.py). Rows are only ever added, so a participant's version keeps
    the settings the participant was served."""

    __tablename__ = "design_versions"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # StudySettings.to_dict()
    stimuli: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [stimulus_id, sha256, role]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProlificLink(Base):
    """The Prolific study a study recruits from (study/platforms/prolific_records.py)."""

    __tablename__ = "prolific_links"
    study_id: Mapped[int] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True
    )
    prolific_study_id: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


BONUS_STATES = ("intended", "set_up", "sent", "paid")


class BonusPayment(Base):
    """One intended Prolific bonus, keyed so that it is asked for once (study/platforms/
    bonuses.py). Prolific's pay call is not idempotent: `state` says how far it got (intended ->
    set_up with bulk_id -> sent, just before the pay call -> paid), and only set_up rows are
    ever paid, so a retry after a crash pays nothing twice."""

    __tablename__ = "bonus_payments"
    __table_args__ = (UniqueConstraint("study_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))  # the researcher's reason and the submission
    submission_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[str] = mapped_column(String(16))  # decimal text in the study's currency, "1.50"
    state: Mapped[str] = mapped_column(String(16), default="intended")  # one of BONUS_STATES
    bulk_id: Mapped[str | None] = mapped_column(String(64))  # Prolific's bulk bonus payment id
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
