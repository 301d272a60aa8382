"""Prolific's submissions against the data the study stored, as a pure function.

A participant is matched by their Prolific id (PROLIFIC_PID, unique per study on both sides).
Flagged: everyone Prolific has paid (APPROVED) or is about to pay (AWAITING REVIEW) whose data
is missing or partial here, and everyone stored here under Prolific whom Prolific does not
know. Everyone else is listed unflagged, so the page accounts for every participant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from study.platforms.prolific import PAID_OR_PENDING, Submission

DATA_ENDS = ("completed", "screened_out")  # stored statuses that end with every trial answered


@dataclass(frozen=True)
class Stored:
    """What the study stored for one Prolific participant."""

    prolific_pid: str
    session_id: str | None
    status: str  # started, completed, returned, screened_out
    responses: int  # answers stored
    n_trials: int  # trials planned

    @property
    def complete(self) -> bool:
        """Every planned trial has its stored answer, and the participant finished."""
        return self.status in DATA_ENDS and self.n_trials > 0 and self.responses >= self.n_trials


@dataclass(frozen=True)
class Row:
    """One participant on either side; `problem` is None when nothing is wrong."""

    prolific_pid: str
    submission_id: str | None
    prolific_status: str | None  # None: Prolific does not know the participant
    stored_status: str | None  # None: nothing stored
    responses: int
    n_trials: int
    problem: str | None

    @property
    def approvable(self) -> bool:
        """Awaiting review at Prolific, completed here with every answer stored."""
        return (self.prolific_status == "AWAITING REVIEW" and self.stored_status == "completed"
                and self.problem is None)


def reconcile(submissions: Iterable[Submission], stored: Iterable[Stored]) -> list[Row]:
    """Every participant of either side, flagged rows first, then by Prolific id."""
    here = {s.prolific_pid: s for s in stored}
    rows: list[Row] = []
    seen: set[str] = set()
    for sub in submissions:
        seen.add(sub.participant_id)
        mine = here.get(sub.participant_id)
        rows.append(Row(
            sub.participant_id, sub.id, sub.status,
            mine.status if mine else None, mine.responses if mine else 0,
            mine.n_trials if mine else 0, _problem(sub.status, mine),
        ))
    for pid, mine in here.items():
        if pid not in seen:
            rows.append(Row(pid, mine.session_id, None, mine.status, mine.responses, mine.n_trials,
                            "stored here, but Prolific does not know this participant"))
    return sorted(rows, key=lambda r: (r.problem is None, r.prolific_pid))


def _problem(prolific_status: str, mine: Stored | None) -> str | None:
    if prolific_status not in PAID_OR_PENDING:
        return None  # returned, timed out, rejected, active: no payment rides on the data
    state = "paid" if prolific_status == "APPROVED" else "awaiting review"
    if mine is None:
        return f"{state} at Prolific, but no data is stored"
    if not mine.complete:
        return (f"{state} at Prolific, but the data is partial ({mine.responses} of "
                f"{mine.n_trials} trials, {mine.status})")
    return None
