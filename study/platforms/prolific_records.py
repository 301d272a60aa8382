"""A study's side of the Prolific integration: which Prolific study it recruits from, what it
stored for each Prolific participant, the reconciliation of the two, and approving submissions
whose data is complete. Prolific's calls go through a `ProlificClient`; approvals are recorded
by Prolific itself (its transition call is idempotent), so nothing here marks them done.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from study.platforms.codes import CodeCheck, check_codes, study_codes
from study.platforms.prolific import ProlificClient, ProlificError, ProlificStudy, checked_id
from study.platforms.reconcile import Row, Stored, reconcile
from study.settings import StudySettings
from study.tables import Participant, ProlificLink, Response, Study


def linked_study_id(s: Session, study_id: int) -> str | None:
    """The Prolific study id a study is linked to, or None."""
    return s.scalar(select(ProlificLink.prolific_study_id).where(ProlificLink.study_id == study_id))


def link(s: Session, study: Study, prolific_study_id: str) -> None:
    """Link `study` to a Prolific study (replacing an earlier link) and commit."""
    checked_id(prolific_study_id, "Prolific study id")
    row = s.get(ProlificLink, study.id)
    if row is None:
        s.add(ProlificLink(study_id=study.id, prolific_study_id=prolific_study_id))
    else:
        row.prolific_study_id = prolific_study_id
    s.commit()


def stored_participants(s: Session, study_id: int) -> list[Stored]:
    """Every Prolific participant the study stored, with the number of answers stored."""
    answers = (select(Response.participant_id, func.count(Response.id).label("n"))
               .group_by(Response.participant_id).subquery())
    rows = s.execute(
        select(Participant.external_id, Participant.external_session_id, Participant.status,
               func.coalesce(answers.c.n, 0), Participant.n_trials)
        .outerjoin(answers, answers.c.participant_id == Participant.id)
        .where(Participant.study_id == study_id, Participant.platform == "prolific",
               Participant.external_id.is_not(None))
    ).all()
    return [Stored(pid, session, status, int(n), int(n_trials))
            for pid, session, status, n, n_trials in rows]


@dataclass(frozen=True)
class Reconciliation:
    prolific_study_id: str
    rows: list[Row]

    @property
    def flagged(self) -> list[Row]:
        return [r for r in self.rows if r.problem is not None]

    @property
    def approvable(self) -> list[Row]:
        return [r for r in self.rows if r.approvable]


def reconciliation(s: Session, study: Study, client: ProlificClient) -> Reconciliation:
    """Prolific's submissions of the linked study against the stored data (reads only)."""
    prolific_id = require_link(s, study)
    submissions = client.submissions(prolific_id)
    return Reconciliation(prolific_id, reconcile(submissions, stored_participants(s, study.id)))


def require_link(s: Session, study: Study) -> str:
    prolific_id = linked_study_id(s, study.id)
    if prolific_id is None:
        raise ProlificError(f"study {study.slug} is not linked to a Prolific study; link it first "
                            f"(python -m study prolific link {study.slug} --study PROLIFIC_STUDY_ID)")
    return prolific_id


@dataclass
class Approval:
    """What an approval run did: submissions approved, and the error that stopped it (if any)."""

    approved: list[str] = field(default_factory=list)
    error: str | None = None


def approve_complete(s: Session, study: Study, client: ProlificClient) -> Approval:
    """Approve every submission awaiting review whose participant completed here with every
    answer stored. Stops at the first refusal; what was approved before it stays approved at
    Prolific, and a rerun approves the rest (approving twice is harmless there)."""
    result = Approval()
    for row in reconciliation(s, study, client).approvable:
        try:
            client.approve(row.submission_id or "")
        except ProlificError as exc:
            result.error = str(exc)
            break
        result.approved.append(row.submission_id or "")
    return result


@dataclass(frozen=True)
class StudyCheck:
    """A dry check of a Prolific study: the study as Prolific has it, and (for an app study)
    each ending's code against it."""

    study: ProlificStudy
    codes: list[CodeCheck]


def dry_check(client: ProlificClient, prolific_study_id: str, study: Study | None) -> StudyCheck:
    """Verify the token, read the Prolific study and compare its completion codes with
    `study`'s; changes nothing anywhere."""
    client.me()
    theirs = client.study(prolific_study_id)
    codes: list[CodeCheck] = []
    if study is not None:
        settings = StudySettings.from_dict(study.settings)
        mine = study_codes(settings, study.completion_code, study.screened_out_code)
        codes = check_codes(mine, theirs.completion_codes)
    return StudyCheck(theirs, codes)
