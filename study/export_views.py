"""SQL views `export_trials`, `export_clicks`, `export_events` holding the export's columns
(docs/formats.md §3), so that analysis can read a live study database without the ORM
(`analysis.load.load_database`). They are created by the Alembic revision 0002; 0005 adds the
trials' `design_hash` (revisions before it build the views with `design=False`).

In the views `participant` is the participant's random public id (a UUID made at start), never
the platform's id: pseudonymous by construction. `received_at` is the database's timestamp.
"""

from __future__ import annotations

from sqlalchemy import Integer, Select, String, case, cast, select
from sqlalchemy.engine import Connection

from study.tables import (
    BrowserEvent,
    Click,
    Condition,
    Participant,
    Response,
    Stimulus,
    Study,
    Trial,
)

VIEWS = ("export_trials", "export_clicks", "export_events")


def trials_from(query: Select) -> Select:
    """`query` over responses joined to their trial, participant, study, stimulus and condition:
    the FROM clause of the trials table (file export and view)."""
    return (
        query.select_from(Response)
        .join(Trial, Trial.id == Response.trial_id)
        .join(Participant, Participant.id == Trial.participant_id)
        .join(Study, Study.id == Participant.study_id)
        .join(Stimulus, Stimulus.id == Trial.stimulus_id)
        .outerjoin(Condition, Condition.id == Participant.condition_id)
    )


def clicks_from(query: Select) -> Select:
    """`query` over clicks joined to their response, trial, participant, study and stimulus."""
    return (
        query.select_from(Click)
        .join(Response, Response.id == Click.response_id)
        .join(Trial, Trial.id == Response.trial_id)
        .join(Participant, Participant.id == Trial.participant_id)
        .join(Study, Study.id == Participant.study_id)
        .join(Stimulus, Stimulus.id == Trial.stimulus_id)
    )


def events_from(query: Select) -> Select:
    """`query` over browser events joined to their participant, study and (if any) trial."""
    return (
        query.select_from(BrowserEvent)
        .join(Participant, Participant.id == BrowserEvent.participant_id)
        .join(Study, Study.id == Participant.study_id)
        .outerjoin(Trial, Trial.id == BrowserEvent.trial_id)
    )


def trials_view(design: bool = True) -> Select:
    """The export_trials view; `design`: with the participant's design_hash column (0005)."""
    gen = Stimulus.generation
    design_hash = [Participant.design_hash.label("design_hash")] if design else []
    return trials_from(
        select(
            Study.slug.label("study"),
            Study.task.label("task"),
            Participant.public_id.label("participant"),
            Participant.status.label("participant_status"),
            Condition.name.label("condition"),
            Trial.index.label("trial_index"),
            Trial.kind.label("trial_kind"),
            Stimulus.stimulus_key.label("stimulus_id"),
            Stimulus.source.label("source"),
            Stimulus.model_name.label("model"),
            Stimulus.class_label.label("class_label"),
            Stimulus.exemplar_id.label("exemplar_id"),
            gen["guidance"].as_float().label("guidance"),
            gen["sampler"].as_string().label("sampler"),
            gen["steps"].as_integer().label("steps"),
            gen["seed"].as_integer().label("seed"),
            Response.answer.label("answer"),
            case((Response.correct.is_(None), None), else_=cast(Response.correct, Integer)).label(
                "correct"
            ),
            Response.confidence.label("confidence"),
            Response.rt_ms.label("rt_ms"),
            Response.exposure_ms.label("exposure_ms"),
            Response.n_clicks.label("n_clicks"),
            Response.client_uuid.label("client_uuid"),
            cast(Response.received_at, String).label("received_at"),
            *design_hash,
        )
    )


def clicks_view() -> Select:
    return clicks_from(
        select(
            Study.slug.label("study"),
            Participant.public_id.label("participant"),
            Trial.index.label("trial_index"),
            Stimulus.stimulus_key.label("stimulus_id"),
            Click.order.label("order"),
            Click.x.label("x"),
            Click.y.label("y"),
            Click.t_ms.label("t_ms"),
            Click.stroke.label("stroke"),
        )
    )


def events_view() -> Select:
    return events_from(
        select(
            Study.slug.label("study"),
            Participant.public_id.label("participant"),
            Trial.index.label("trial_index"),
            BrowserEvent.kind.label("kind"),
            BrowserEvent.t_ms.label("t_ms"),
            cast(BrowserEvent.detail, String).label("detail"),
            cast(BrowserEvent.received_at, String).label("received_at"),
        )
    )


def _ddl(conn: Connection, name: str, query: Select) -> str:
    sql = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return f"CREATE VIEW {name} AS {sql}"


def create_views(conn: Connection, design: bool = True) -> None:
    """Create the views; `design=False` for revisions older than participants.design_hash."""
    queries = (trials_view(design), clicks_view(), events_view())
    for name, query in zip(VIEWS, queries, strict=True):
        conn.exec_driver_sql(_ddl(conn, name, query))


def drop_views(conn: Connection) -> None:
    for name in VIEWS:
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
