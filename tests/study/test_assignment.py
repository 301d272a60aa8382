"""Counterbalancing and trial plans."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

import pytest
from sqlalchemy.orm import Session

from study.assignment import (
    StimulusRef,
    build_trial_plan,
    choose_condition,
    condition_counts,
    pick_condition,
)
from study.db import make_engine
from study.settings import StudySettings
from study.tables import Condition, Participant, Study, utcnow

STIMULI = (
    [StimulusRef(i, "main") for i in range(1, 31)]
    + [StimulusRef(i, "practice") for i in range(40, 43)]
    + [StimulusRef(i, "catch") for i in range(50, 54)]
)


def test_plan_structure() -> None:
    settings = StudySettings.from_dict({"trials_per_participant": 10, "n_practice": 2, "n_catch": 3})
    plan = build_trial_plan(STIMULI, settings, seed=1)
    assert [t.kind for t in plan[:2]] == ["practice", "practice"]
    assert all(40 <= t.stimulus_id < 43 for t in plan[:2])
    kinds = Counter(t.kind for t in plan)
    assert kinds == {"practice": 2, "main": 10, "catch": 3}
    main_ids = [t.stimulus_id for t in plan if t.kind == "main"]
    assert len(set(main_ids)) == 10  # no repeats while the pool allows
    assert all(50 <= t.stimulus_id < 54 for t in plan if t.kind == "catch")


def test_stored_seed_reproduces_order_and_seeds_differ() -> None:
    settings = StudySettings.from_dict({"trials_per_participant": 20})
    a = build_trial_plan(STIMULI, settings, seed=1234)
    assert build_trial_plan(list(reversed(STIMULI)), settings, seed=1234) == a
    assert build_trial_plan(STIMULI, settings, seed=1235) != a


def test_small_pool_repeats_and_missing_roles() -> None:
    stimuli = [StimulusRef(1, "main"), StimulusRef(2, "main")]
    settings = StudySettings.from_dict({"trials_per_participant": 5, "n_practice": 1, "n_catch": 2})
    plan = build_trial_plan(stimuli, settings, seed=0)
    assert [t.kind for t in plan] == ["practice"] + ["main"] * 5  # no catch stimuli: no catch
    assert Counter(t.stimulus_id for t in plan[1:5]) == {1: 2, 2: 2}


def test_pick_condition_fewest_then_lowest_id() -> None:
    assert pick_condition({3: 2, 1: 2, 2: 1}) == 2
    assert pick_condition({3: 0, 1: 0}) == 1
    with pytest.raises(ValueError):
        pick_condition({})


def test_counterbalancing_over_completed_and_recently_active(tmp_path) -> None:
    from study.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'a.db'}"
    upgrade(url)
    engine = make_engine(url)
    now = utcnow()
    with Session(engine) as s:
        study = Study(slug="s", title="t", task="realfake", completion_code="C")
        s.add(study)
        s.flush()
        conds = [Condition(study_id=study.id, name=n) for n in ("a", "b", "c")]
        s.add_all(conds)
        s.flush()

        serial = itertools.count()

        def add(cond: Condition, status: str, seen: dt.datetime) -> None:
            n = next(serial)
            s.add(Participant(study_id=study.id, token=f"t{n}", public_id=f"p{n}",
                              platform="direct", status=status, condition_id=cond.id, seed=n,
                              last_seen_at=seen))
            s.flush()

        # a: one completed; b: one active now; c: one who left two hours ago (frees its slot).
        add(conds[0], "completed", now - dt.timedelta(days=1))
        add(conds[1], "started", now)
        add(conds[2], "started", now - dt.timedelta(hours=2))
        assert condition_counts(s, study.id, now, 30) == {conds[0].id: 1, conds[1].id: 1, conds[2].id: 0}
        assert choose_condition(s, study.id, now, 30) == conds[2].id
        # Sixty arrivals spread evenly over the three conditions.
        for _ in range(60):
            cid = choose_condition(s, study.id, now, 30)
            add(next(c for c in conds if c.id == cid), "started", now)
        counts = condition_counts(s, study.id, now, 30)
        assert max(counts.values()) - min(counts.values()) <= 1
    engine.dispose()
