"""Store one participant response exactly once, in as few database round trips as possible.

This is the API's hot path (hundreds of submissions per second), so it works on a pooled
Connection without the ORM session, and it never holds a lock while Python validates.

The general way, two steps:
1. `read_context` reads the participant, the current trial and the study's settings (as JSON
   text, the key of a settings cache) in one joined SELECT, outside any transaction.
2. `store` advances the participant *only if it is still at the index that was read*
   (compare-and-set on `current_index`) and inserts the response and its clicks, atomically:
   - PostgreSQL: one statement in autocommit mode (a data-modifying CTE: UPDATE ... RETURNING
     feeds the response INSERT, which feeds the clicks INSERT over unnest'ed arrays). A
     submission costs two round trips instead of BEGIN, SELECT ... FOR UPDATE, three writes
     and COMMIT.
   - SQLite: BEGIN IMMEDIATE, the writes, COMMIT on the driver's connection, under
     `db.sqlite_write_lock`, which queues writers without SQLite's sleeping busy handler.
     Only the SQLite calls run under the lock: a lock holder that waits for the GIL between
     SQLAlchemy's Python steps keeps every other writer waiting.

The short way, PostgreSQL studies without a staircase: `store_current` does both steps in one
round trip. The participant's unchanging part (`participation`) is cached per worker; the
statement checks that the trial is the current one and scores the answer in SQL generated from
study.participation.scoring. Refusals, races and staircase studies take the general way, which
gives the exact answer. The steps that choose between the two are in
study/participation/lifecycle.py.

PostgreSQL statements go to the driver's cursor directly (`_driver_row`). SQLAlchemy's
per-statement work (cache key, compiled cache, result metadata) would be a tenth of a
submission's server CPU; its error translation and invalidation are kept.

A concurrent request that advanced the participant first makes `store` return None. A repeated
`client_uuid` or a second answer to one trial raises IntegrityError (unique constraints), and
`stored_result` then finds what was stored. Either way nothing is stored twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, Text, bindparam, cast, func, select
from sqlalchemy.exc import DBAPIError

from study import db
from study.participation.scoring import truth_sql
from study.tables import Condition, DesignVersion, Participant, Response, Stimulus, Study, Trial
from study.validation import ClickIn


def _by_token(*columns: Any) -> Select:
    """SELECT `columns`, then the study's task and the settings (of the participant's design
    version, else the study's) and condition's settings as JSON text, of the participant with
    the token :token."""
    return (
        select(
            *columns,
            Study.task,
            func.coalesce(cast(DesignVersion.settings, Text), cast(Study.settings, Text))
            .label("settings_json"),
            cast(Condition.settings, Text).label("condition_json"),
        )
        .select_from(Participant)
        .join(Study, Study.id == Participant.study_id)
        .outerjoin(DesignVersion, DesignVersion.hash == Participant.design_hash)
        .outerjoin(Condition, Condition.id == Participant.condition_id)
        .where(Participant.token == bindparam("token"))
    )


_CONTEXT = (
    _by_token(
        Participant.id,
        Participant.current_index,
        Participant.staircase,
        Trial.id.label("trial_id"),
        Trial.kind,
        Trial.exposure_ms,
        Stimulus.source,
    )
    .outerjoin(
        Trial, (Trial.participant_id == Participant.id) & (Trial.index == Participant.current_index)
    )
    .outerjoin(Stimulus, Stimulus.id == Trial.stimulus_id)
)

# What never changes for a participant (condition and study settings are fixed once it has
# started), so each worker keeps it per token after the first request.
_PARTICIPATION = _by_token(Participant.id)
PARTICIPATION_CACHE_SIZE = 100_000

_STORED = select(
    Response.id, Response.participant_id, Response.trial_id, Response.correct, Response.feedback
).where(Response.client_uuid == bindparam("client_uuid"))

_ANSWERED = select(Response.id).where(Response.trial_id == bindparam("trial_id"))

# The columns a stored response fills, in the order of both backends' INSERTs.
_RESPONSE_COLUMNS = ("trial_id", "participant_id", "client_uuid", "answer", "correct", "confidence",
                     "rt_ms", "exposure_ms", "n_clicks", "feedback", "client_sent_at", "received_at")

# SQLite: the writes of one transaction, in the driver's named style. Values are converted by
# the columns' own SQLAlchemy types (`_sqlite_values`), so rows look as the ORM writes them.
_SQLITE_ADVANCE = ("UPDATE participants SET current_index = :next_index, last_seen_at = :now{staircase} "
                   "WHERE id = :pid AND current_index = :idx")
_SQLITE_INSERT_RESPONSE = (
    f"INSERT INTO responses ({', '.join(_RESPONSE_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _RESPONSE_COLUMNS)}) RETURNING id"
)
_SQLITE_INSERT_CLICK = 'INSERT INTO clicks (response_id, "order", x, y, t_ms, stroke) VALUES (?, ?, ?, ?, ?, ?)'

# PostgreSQL: the writes as one statement, built from shared pieces. The response row exists
# only if the UPDATE matched (the participant was still at the index), the clicks only if the
# response row exists.
_PG_INSERT_RESPONSE = f"INSERT INTO responses ({', '.join(_RESPONSE_COLUMNS)})"
_PG_INSERT_CLICKS = """clicked AS (
    INSERT INTO clicks (response_id, "order", x, y, t_ms, stroke)
    SELECT stored.id, c.ord - 1, c.x, c.y, c.t_ms, c.stroke
      FROM stored,
           unnest(CAST(%(xs)s AS double precision[]), CAST(%(ys)s AS double precision[]),
                  CAST(%(ts)s AS double precision[]), CAST(%(strokes)s AS integer[]))
           WITH ORDINALITY AS c(x, y, t_ms, stroke, ord)
)"""

_PG_STORE = f"""
WITH advanced AS (
    UPDATE participants
       SET current_index = %(next_index)s,
           last_seen_at = %(now)s,
           staircase = COALESCE(CAST(%(staircase)s AS json), staircase)
     WHERE id = %(pid)s AND current_index = %(idx)s
 RETURNING id
), stored AS (
    {_PG_INSERT_RESPONSE}
    SELECT %(trial_id)s, advanced.id, %(client_uuid)s, %(answer)s, %(correct)s, %(confidence)s,
           %(rt_ms)s, %(exposure_ms)s, %(n_clicks)s, CAST(%(feedback)s AS json), %(client_sent_at)s, %(now)s
      FROM advanced
 RETURNING id
), {_PG_INSERT_CLICKS}
SELECT id FROM stored
"""

# PostgreSQL, one round trip for a study without a staircase: the statement itself checks that
# :trial_id is the participant's current trial, advances it (compare-and-set), scores the answer
# with study.participation.scoring's definition (`truth_sql`; :judged and :feedback_kind come from
# its `sql_parameters`), and stores the response and its clicks. No row back: not the current
# trial, or a concurrent request won.
_PG_STORE_CURRENT = f"""
WITH this_trial AS (
    SELECT t.id, t."index", t.kind, t.exposure_ms, {truth_sql("s.source").replace("%", "%%")} AS truth
      FROM participants p
      JOIN trials t ON t.participant_id = p.id AND t."index" = p.current_index
      JOIN stimuli s ON s.id = t.stimulus_id
     WHERE p.id = %(pid)s AND t.id = %(trial_id)s
), advanced AS (
    UPDATE participants
       SET current_index = this_trial."index" + 1, last_seen_at = %(now)s
      FROM this_trial
     WHERE participants.id = %(pid)s AND participants.current_index = this_trial."index"
 RETURNING this_trial."index" + 1 AS next_index, this_trial.kind, this_trial.exposure_ms,
           this_trial.truth
), stored AS (
    {_PG_INSERT_RESPONSE}
    SELECT %(trial_id)s, %(pid)s, %(client_uuid)s, CAST(%(answer)s AS text),
           CASE WHEN %(judged)s THEN CAST(%(answer)s AS text) = a.truth END,
           %(confidence)s, %(rt_ms)s, COALESCE(CAST(%(exposure_ms)s AS double precision), a.exposure_ms),
           %(n_clicks)s,
           CASE WHEN a.kind = CAST(%(feedback_kind)s AS text)
                THEN json_build_object('truth', a.truth) ELSE CAST('{{}}' AS json) END,
           %(client_sent_at)s, %(now)s
      FROM advanced a
 RETURNING id, correct, feedback
), {_PG_INSERT_CLICKS}
SELECT stored.id, stored.correct, stored.feedback, advanced.next_index FROM stored, advanced
"""


@dataclass(frozen=True)
class NewResponse:
    """The validated fields of a response, ready to store."""

    trial_id: int
    client_uuid: str
    answer: str | None
    correct: bool | None
    confidence: int | None
    rt_ms: float
    exposure_ms: float | None
    feedback: dict[str, Any]
    client_sent_at: float | None
    clicks: list[ClickIn]


class Context(NamedTuple):
    """What a submission is checked against: the participant, its current trial (None fields
    past the last trial), and the study's and condition's settings as JSON text."""

    id: int
    current_index: int
    staircase: dict[str, Any]
    trial_id: int | None
    kind: str | None
    exposure_ms: float | None
    source: str | None
    task: str
    settings_json: str
    condition_json: str | None


@functools.cache
def _compiled(stmt: Select, dialect: Any) -> str:
    return str(stmt.compile(dialect=dialect))


def _first_by_token(conn: Connection, stmt: Select, token: str) -> Any:
    """The first row of `stmt` for :token: on the driver's cursor on PostgreSQL, through
    SQLAlchemy (and its JSON and date conversions) on SQLite, ending the read's transaction."""
    if conn.dialect.name == "postgresql":
        return _driver_row(conn, _compiled(stmt, conn.dialect), {"token": token})
    row = conn.execute(stmt, {"token": token}).first()
    _end_read(conn)
    return row


@contextmanager
def _sqlalchemy_errors(conn: Connection, sql: str, params: Any) -> Iterator[None]:
    """Driver errors in the block come out as SQLAlchemy's exceptions (IntegrityError,
    OperationalError, ...) and a lost connection is invalidated, as Connection.execute would do,
    so that the API's error handlers and the pool treat them alike."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql, params, exc, dbapi.Error, hide_parameters=True, connection_invalidated=lost,
            dialect=conn.dialect,
        ) from exc


def _driver_row(conn: Connection, sql: str, params: dict[str, Any]) -> tuple | None:
    """The first row of `sql` (in the driver's paramstyle), run on the driver's cursor."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        with _sqlalchemy_errors(conn, sql, params):
            cursor.execute(sql, params)
            return cursor.fetchone()
    finally:
        cursor.close()


def connect() -> Connection:
    """A pooled connection for the hot path: autocommit on PostgreSQL (each statement is its own
    transaction, no BEGIN/COMMIT round trips; study.db.answer_engine); on SQLite `store` opens
    its own transaction."""
    return db.answer_engine().connect()


class Participation(NamedTuple):
    """The unchanging part of a participant's context."""

    id: int
    task: str
    settings_json: str
    condition_json: str | None


class Stored(NamedTuple):
    """A response stored by `store_current`, as the client is told of it."""

    id: int
    correct: bool | None
    feedback: dict[str, Any]
    next_index: int


def participation(conn: Connection, token: str, cache: dict[str, Participation]) -> Participation | None:
    """The participant of `token` (id, task, settings), from `cache` when it is there; None for
    an unknown token. `cache` is the app's (one per worker process), emptied when it is full."""
    found = cache.get(token)
    if found is not None:
        return found
    row = _first_by_token(conn, _PARTICIPATION, token)
    if row is None:
        return None
    if len(cache) >= PARTICIPATION_CACHE_SIZE:
        cache.clear()
    cache[token] = found = Participation(*row)
    return found


def store_current(conn: Connection, participant_id: int, r: NewResponse,
                  sql_scoring: dict[str, Any], now: dt.datetime) -> Stored | None:
    """PostgreSQL, studies without a staircase: store `r` if its trial is the participant's
    current one, in one statement that also advances the participant and scores the answer
    (`sql_scoring`: study.participation.scoring.sql_parameters). `r.correct` and `r.feedback`
    are not used; `r.exposure_ms` None means the trial's own. None if nothing was stored (not
    the current trial, or a concurrent request won); IntegrityError for a stored UUID."""
    params = _response_row(participant_id, r, now)
    params.update(_click_arrays(r.clicks), pid=participant_id, now=now)
    params.update(sql_scoring)
    row = _driver_row(conn, _PG_STORE_CURRENT, params)
    return Stored(*row) if row is not None else None


def read_context(conn: Connection, token: str) -> Context | None:
    """The context of the participant with this token; None for an unknown token."""
    row = _first_by_token(conn, _CONTEXT, token)
    if row is None:
        return None
    ctx = Context(*row)
    if isinstance(ctx.staircase, str):  # SQLite's JSON is text at the driver level
        ctx = ctx._replace(staircase=json.loads(ctx.staircase))
    return ctx


def stored_result(conn: Connection, client_uuid: str) -> Any:
    """The stored response with this client UUID (id, participant_id, trial_id, correct,
    feedback), or None."""
    row = conn.execute(_STORED, {"client_uuid": client_uuid}).one_or_none()
    _end_read(conn)
    return row


def trial_answered(conn: Connection, trial_id: int) -> bool:
    answered = conn.execute(_ANSWERED, {"trial_id": trial_id}).first() is not None
    _end_read(conn)
    return answered


def trial_index(conn: Connection, trial_id: int, participant_id: int) -> int | None:
    """The index of `trial_id` in this participant's list, or None if it is not theirs."""
    index = conn.scalar(
        select(Trial.index).where(Trial.id == trial_id, Trial.participant_id == participant_id)
    )
    _end_read(conn)
    return index


def _end_read(conn: Connection) -> None:
    """End the implicit transaction of a read on SQLite (a no-op in autocommit mode), so that no
    snapshot is held while Python works."""
    if conn.in_transaction():
        conn.rollback()


def store(
    conn: Connection,
    participant_id: int,
    index: int,
    response: NewResponse,
    staircase: dict[str, Any] | None,
    now: dt.datetime,
) -> int | None:
    """Store `response` as the answer to trial number `index` and advance the participant to
    `index + 1` (with the new `staircase` state, if given), all or nothing. Returns the response
    id, or None if the participant was no longer at `index` (a concurrent request won). Raises
    IntegrityError if the client UUID or the trial already has a stored response."""
    progress = {"pid": participant_id, "idx": index, "next_index": index + 1, "now": now}
    if conn.dialect.name == "postgresql":
        return _store_postgres(conn, progress, response, staircase)
    return _store_sqlite(conn, progress, response, staircase)


def _response_row(participant_id: int, r: NewResponse, now: dt.datetime) -> dict[str, Any]:
    return {
        "trial_id": r.trial_id,
        "participant_id": participant_id,
        "client_uuid": r.client_uuid,
        "answer": r.answer,
        "correct": r.correct,
        "confidence": r.confidence,
        "rt_ms": r.rt_ms,
        "exposure_ms": r.exposure_ms,
        "n_clicks": len(r.clicks),
        "feedback": r.feedback,
        "client_sent_at": r.client_sent_at,
        "received_at": now,
    }


def _click_arrays(clicks: list[ClickIn]) -> dict[str, list]:
    """The clicks as the column arrays that the PostgreSQL statements unnest."""
    return {"xs": [c.x for c in clicks], "ys": [c.y for c in clicks],
            "ts": [c.t_ms for c in clicks], "strokes": [c.stroke for c in clicks]}


@functools.cache
def _sqlite_converters(dialect: Any) -> tuple[Any, Any, Any]:
    """The bind processors of the DateTime, JSON and Boolean columns for this dialect."""
    def processor(column: Any) -> Any:
        return column.type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)

    table = Response.__table__.c
    return processor(table.received_at), processor(table.feedback), processor(table.correct)


def _sqlite_values(dialect: Any, values: dict[str, Any]) -> dict[str, Any]:
    when, as_json, as_bool = _sqlite_converters(dialect)
    out = dict(values)
    out["now"] = out["received_at"] = when(values["now"])
    out["feedback"] = as_json(values["feedback"])
    out["correct"] = as_bool(values["correct"]) if values["correct"] is not None else None
    if values.get("staircase") is not None:
        out["staircase"] = as_json(values["staircase"])
    return out


def _store_sqlite(conn: Connection, progress: dict[str, Any], r: NewResponse,
                  staircase: dict[str, Any] | None) -> int | None:
    """BEGIN IMMEDIATE, advance, insert, COMMIT on the driver's connection, with everything
    that can be prepared done before the write lock is taken: the lock is held for the SQLite
    calls alone, so that waiting writers in other threads and processes wait little."""
    params = _sqlite_values(conn.dialect, {**_response_row(progress["pid"], r, progress["now"]),
                                           **progress, "staircase": staircase})
    advance = _SQLITE_ADVANCE.format(staircase=", staircase = :staircase" if staircase is not None else "")
    clicks = [(i, c.x, c.y, c.t_ms, c.stroke) for i, c in enumerate(r.clicks)]
    _end_read(conn)
    dbapi_conn = conn.connection.dbapi_connection
    with db.sqlite_write_lock(conn.engine), _sqlalchemy_errors(conn, _SQLITE_INSERT_RESPONSE, params):
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(advance, params)
            if cursor.rowcount != 1:
                dbapi_conn.rollback()
                return None
            cursor.execute(_SQLITE_INSERT_RESPONSE, params)
            response_id = cursor.fetchone()[0]
            if clicks:
                cursor.executemany(_SQLITE_INSERT_CLICK, [(response_id, *c) for c in clicks])
            dbapi_conn.commit()
        except BaseException:
            dbapi_conn.rollback()
            raise
        finally:
            cursor.close()
    return response_id


def _store_postgres(conn: Connection, progress: dict[str, Any], r: NewResponse,
                    staircase: dict[str, Any] | None) -> int | None:
    params = _response_row(progress["pid"], r, progress["now"])
    params.update(progress)
    params["feedback"] = json.dumps(r.feedback)
    params["staircase"] = json.dumps(staircase) if staircase is not None else None
    params.update(_click_arrays(r.clicks))
    row = _driver_row(conn, _PG_STORE, params)
    return row[0] if row is not None else None
