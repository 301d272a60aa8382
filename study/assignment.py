"""Who gets which condition and which trials, in which order.

Conditions are counterbalanced: a new participant joins the condition with the fewest
participants that completed or were active in the last `active_window_minutes` (people who
left long ago free their slot). The trial list is practice first, then the main trials with the
catch trials at random places, all drawn with `random.Random(seed)`; the seed is stored on the
participant, so `build_trial_plan` on the same stimuli and settings gives the same list again.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from study.settings import StudySettings
from study.tables import Condition, Participant


@dataclass(frozen=True)
class StimulusRef:
    id: int
    role: str  # practice | main | catch


@dataclass(frozen=True)
class PlannedTrial:
    stimulus_id: int
    kind: str  # practice | main | catch


def pick_condition(counts: dict[int, int]) -> int:
    """The condition id with the fewest participants; ties go to the lowest id."""
    if not counts:
        raise ValueError("no conditions to choose from")
    return min(counts, key=lambda cid: (counts[cid], cid))


def condition_counts(
    session: Session, study_id: int, now: dt.datetime, window_minutes: float
) -> dict[int, int]:
    """Participants per condition that completed or were seen within the window (0 for none)."""
    since = now - dt.timedelta(minutes=window_minutes)
    ids = session.scalars(select(Condition.id).where(Condition.study_id == study_id)).all()
    counts = dict.fromkeys(ids, 0)
    rows = session.execute(
        select(Participant.condition_id, func.count())
        .where(
            Participant.study_id == study_id,
            Participant.condition_id.is_not(None),
            or_(
                Participant.status == "completed",
                (Participant.status == "started") & (Participant.last_seen_at >= since),
            ),
        )
        .group_by(Participant.condition_id)
    ).all()
    for cid, n in rows:
        if cid in counts:
            counts[cid] = n
    return counts


def choose_condition(
    session: Session, study_id: int, now: dt.datetime, window_minutes: float
) -> int | None:
    counts = condition_counts(session, study_id, now, window_minutes)
    return pick_condition(counts) if counts else None


def _draw(pool: Sequence[int], n: int, rng: random.Random) -> list[int]:
    """n items from pool without repeats while possible, then whole reshuffled passes."""
    out: list[int] = []
    while len(out) < n and pool:
        take = min(n - len(out), len(pool))
        out.extend(rng.sample(list(pool), take))
    return out


def build_trial_plan(
    stimuli: Sequence[StimulusRef], settings: StudySettings, seed: int
) -> list[PlannedTrial]:
    """The ordered trial list for one participant; a pure function of its arguments.

    Practice stimuli come from the `practice` role (the main pool when there is none); catch
    trials need `catch` stimuli and are left out when the study has none.
    """
    rng = random.Random(seed)
    by_role: dict[str, list[int]] = {"practice": [], "main": [], "catch": []}
    for s in sorted(stimuli, key=lambda s: s.id):
        by_role.setdefault(s.role, []).append(s.id)
    practice_pool = by_role["practice"] or by_role["main"]
    practice = _draw(practice_pool, settings.n_practice, rng)
    main = [PlannedTrial(i, "main") for i in _draw(by_role["main"], settings.trials_per_participant, rng)]
    for sid in _draw(by_role["catch"], settings.n_catch, rng):
        main.insert(rng.randint(0, len(main)), PlannedTrial(sid, "catch"))
    return [PlannedTrial(i, "practice") for i in practice] + main
