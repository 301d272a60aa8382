"""Scoring a real-or-fake answer: a model's image is fake, every other image is real.

This is the one definition. The Python path calls `score`; PostgreSQL's one-round-trip
statement (study/response_store.py) embeds `truth_sql`, generated from the same table, and
tests/study/test_scoring.py checks that statement's stored results against `score`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, literal_column
from sqlalchemy.dialects import postgresql

# source of a stimulus -> the right answer to "real or fake?"
TRUTH_OF_SOURCE = {"model": "fake", "real": "real"}
DEFAULT_TRUTH = "real"
# The trial kind on which a study with `practice_feedback` tells the participant the truth.
FEEDBACK_KIND = "practice"
JUDGED_TASK = "realfake"


def truth(source: str | None) -> str:
    """The right answer for a stimulus of this source."""
    return TRUTH_OF_SOURCE.get(source or "", DEFAULT_TRUTH)


def shows_truth(kind: str | None, practice_feedback: bool) -> bool:
    """Whether the participant is told the truth after answering a trial of this kind."""
    return practice_feedback and kind == FEEDBACK_KIND


@dataclass(slots=True)
class Score:
    """`correct`: None for tasks without a right answer (ClickMe); `feedback`: what the reply
    tells the participant (`{"truth": ...}` on feedback trials, else empty)."""

    correct: bool | None
    feedback: dict[str, Any] = field(default_factory=dict)


def score(task: str, kind: str | None, source: str | None, answer: str | None,
          practice_feedback: bool) -> Score:
    if task != JUDGED_TASK:
        return Score(None)
    right = truth(source)
    return Score(answer == right, {"truth": right} if shows_truth(kind, practice_feedback) else {})


def answer_key(task: str, kind: str, source: str | None, practice_feedback: bool) -> str | None:
    """The right answer, sent with a trial whose answer is followed by feedback (the page shows
    it after the participant answers), else None."""
    if task != JUDGED_TASK or not shows_truth(kind, practice_feedback):
        return None
    return truth(source)


def truth_sql(source_column: str) -> str:
    """`truth` as a PostgreSQL expression over the SQL column `source_column`."""
    expr = case(TRUTH_OF_SOURCE, value=literal_column(source_column), else_=DEFAULT_TRUTH)
    return str(expr.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def sql_parameters(task: str, practice_feedback: bool) -> dict[str, Any]:
    """The parameters with which the one-round-trip statement applies `score`: whether the
    answer is judged, and the trial kind that shows the truth (None: none does)."""
    judged = task == JUDGED_TASK
    return {"judged": judged, "feedback_kind": FEEDBACK_KIND if judged and practice_feedback else None}
