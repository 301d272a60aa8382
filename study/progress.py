"""Live progress of studies, computed with aggregate SQL (a few queries for all studies at once).

Per study: participants started / completed / returned / screened out, responses, median
reaction time, and catch trials answered wrongly. Works the same on SQLite and PostgreSQL (the
median uses window functions, which both have).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from study.tables import Participant, Response, Trial


@dataclass
class StudyProgress:
    """Counts for one study; `median_rt_ms` is None before the first response with an RT."""

    study_id: int
    started: int = 0  # every participant who began (all statuses)
    in_progress: int = 0
    completed: int = 0
    returned: int = 0
    screened_out: int = 0
    responses: int = 0
    median_rt_ms: float | None = None
    catch_trials: int = 0
    catch_failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def study_progress(db: Session, study_ids: Iterable[int]) -> dict[int, StudyProgress]:
    """Progress of each study in `study_ids` (studies without participants get zeros)."""
    ids = list(study_ids)
    out = {sid: StudyProgress(study_id=sid) for sid in ids}
    if not ids:
        return out

    status_rows = db.execute(
        select(Participant.study_id, Participant.status, func.count())
        .where(Participant.study_id.in_(ids))
        .group_by(Participant.study_id, Participant.status)
    )
    for sid, status, n in status_rows:
        p = out[sid]
        p.started += n
        if status == "started":
            p.in_progress += n
        elif status in ("completed", "returned", "screened_out"):
            setattr(p, status, getattr(p, status) + n)

    is_catch = Trial.kind == "catch"
    response_rows = db.execute(
        select(
            Participant.study_id,
            func.count(Response.id),
            func.sum(case((is_catch, 1), else_=0)),
            func.sum(case((and_(is_catch, Response.correct.is_(False)), 1), else_=0)),
        )
        .join(Participant, Participant.id == Response.participant_id)
        .join(Trial, Trial.id == Response.trial_id)
        .where(Participant.study_id.in_(ids))
        .group_by(Participant.study_id)
    )
    for sid, n, n_catch, n_fail in response_rows:
        out[sid].responses = int(n or 0)
        out[sid].catch_trials = int(n_catch or 0)
        out[sid].catch_failures = int(n_fail or 0)

    for sid, median in _median_rt(db, ids):
        out[sid].median_rt_ms = float(median) if median is not None else None
    return out


def _median_rt(db: Session, ids: list[int]) -> list[tuple[int, float | None]]:
    """Median RT per study: rank RTs within each study, average the one or two middle ranks."""
    ranked = (
        select(
            Participant.study_id.label("sid"),
            Response.rt_ms.label("rt"),
            func.row_number()
            .over(partition_by=Participant.study_id, order_by=Response.rt_ms)
            .label("rn"),
            func.count().over(partition_by=Participant.study_id).label("n"),
        )
        .join(Participant, Participant.id == Response.participant_id)
        .where(Participant.study_id.in_(ids), Response.rt_ms.is_not(None))
        .subquery()
    )
    # Middle ranks: (n + 1) // 2 and (n + 2) // 2, equal for odd n; integer division in SQL.
    lo = (ranked.c.n + 1) // 2
    hi = (ranked.c.n + 2) // 2
    query = (
        select(ranked.c.sid, func.avg(ranked.c.rt))
        .where((ranked.c.rn == lo) | (ranked.c.rn == hi))
        .group_by(ranked.c.sid)
    )
    return [(sid, med) for sid, med in db.execute(query)]
