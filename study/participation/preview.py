"""A researcher's preview: the participant's life cycle with nothing stored.

The state a participant row would hold (seed, position, staircase, the last answer) is a plain
dict that the API keeps in the researcher's signed session cookie; the trial list is rebuilt
from the seed on each call with the same `build_trial_plan` that real participants get, and
every step runs the same lifecycle functions over a `PreviewLedger`.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

from sqlalchemy import select

from study import db
from study.errors import ApiError
from study.participation import lifecycle
from study.participation.database import Started, plan_of, settings_of
from study.participation.rules import initial_staircase, trial_exposure
from study.response_store import Context, NewResponse
from study.tables import Condition, Stimulus, Study
from study.validation import EventIn

PREVIEW_TOKEN = "preview"
PREVIEW_PARTICIPANT = 0  # the preview's participant id in answer contexts
PREVIEW_PLATFORM = "preview"  # sends nobody anywhere after the debrief


def start(slug: str) -> tuple[dict[str, Any], Started]:
    """A new preview of the study (any status) in its first condition: the state to keep, and
    the start call's answer."""
    s = db.session()
    study = s.scalar(select(Study).where(Study.slug == slug))
    if study is None:
        raise ApiError(404, "no such study", None)
    condition = s.scalar(
        select(Condition).where(Condition.study_id == study.id).order_by(Condition.id).limit(1)
    )
    settings = settings_of(study, condition)
    state = {
        "slug": slug,
        "seed": secrets.randbelow(2**31 - 1),
        "condition_id": condition.id if condition else None,
        "index": 0,
        "last": None,
        "staircase": initial_staircase(settings),
    }
    n = len(plan_of(s, study.id, settings, state["seed"]))
    if n == 0:
        raise ApiError(410, "this study has no stimuli yet", None)
    return state, Started(PREVIEW_TOKEN, PREVIEW_TOKEN, condition.name if condition else None,
                          n, 0, created=True)


class PreviewLedger:
    """A preview's participant; `state` (a start's state) is updated in place by answers."""

    preview = True

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        s = db.session()
        self.study = s.scalar(select(Study).where(Study.slug == state["slug"]))
        if self.study is None:
            raise ApiError(404, "no such study", None)
        cid = state["condition_id"]
        self.condition = s.get(Condition, cid) if cid else None
        self.settings = settings_of(self.study, self.condition)
        self.plan = plan_of(s, self.study.id, self.settings, state["seed"])

    @property
    def index(self) -> int:
        return self.state["index"]

    def _stimulus(self, index: int) -> Stimulus:
        return db.session().get(Stimulus, self.plan[index].stimulus_id)

    def current_trial(self) -> lifecycle.CurrentTrial | lifecycle.Finished:
        if self.index >= len(self.plan):
            return lifecycle.Finished(len(self.plan), self.index)
        planned = self.plan[self.index]
        return lifecycle.CurrentTrial(self.study, self.settings, self.index + 1, self.index,
                                      planned.kind, self._stimulus(self.index), len(self.plan),
                                      self.state["staircase"], served=False, exposure_ms=None)

    def mark_served(self, trial: lifecycle.CurrentTrial, exposure_ms: float | None) -> None:
        """Nothing to keep: the exposure follows again from the same state."""

    def context(self) -> Context | None:
        done = self.index >= len(self.plan)
        kind = None if done else self.plan[self.index].kind
        stimulus = None if done else self._stimulus(self.index)
        staircase = self.state["staircase"]
        exposure = None if done else trial_exposure(self.study.task, kind, self.settings, staircase)
        return Context(
            PREVIEW_PARTICIPANT, self.index, staircase, None if done else self.index + 1, kind,
            exposure, stimulus.source if stimulus is not None else None, self.study.task,
            json.dumps(self.study.settings, sort_keys=True),
            json.dumps(self.condition.settings, sort_keys=True) if self.condition else None,
        )

    def one_trip(self) -> lifecycle.OneTrip | None:
        return None  # answers take the general path

    def store(self, ctx: Context, response: NewResponse,
              staircase: dict[str, Any] | None) -> tuple[int | None] | None:
        self.state["index"] = ctx.current_index + 1
        if staircase is not None:
            self.state["staircase"] = staircase
        self.state["last"] = {"client_uuid": response.client_uuid, "trial_id": response.trial_id,
                              "correct": response.correct, "feedback": response.feedback}
        return (None,)

    def stored_answer(self, client_uuid: str) -> lifecycle.StoredAnswer | None:
        last = self.state.get("last")
        if not last or last["client_uuid"] != client_uuid:
            return None
        return lifecycle.StoredAnswer(None, PREVIEW_PARTICIPANT, last["trial_id"], last["correct"],
                            last["feedback"])

    def trial_answered(self, trial_id: int) -> bool:
        return trial_id - 1 < self.index

    def trial_index(self, trial_id: int, participant_id: int) -> int | None:
        return trial_id - 1 if 0 <= trial_id - 1 < len(self.plan) else None

    def trial_stimulus(self, trial_id: int) -> lifecycle.TrialStimulus | None:
        index = trial_id - 1
        if not 0 <= index < len(self.plan):
            return None
        return lifecycle.TrialStimulus(self.study, self.settings, self._stimulus(index), index,
                                       self.index)

    def own_trials(self, trial_ids: set[int]) -> set[int]:
        return {i for i in trial_ids if 1 <= i <= len(self.plan)}

    def add_events(self, events: list[EventIn], now: dt.datetime) -> int:
        return 0  # a preview stores nothing

    def progress(self) -> lifecycle.Progress:
        return lifecycle.Progress(self.study, self.settings, self.index, len(self.plan),
                                  PREVIEW_PLATFORM, None)

    def mark_completed(self, now: dt.datetime, status: str = "completed") -> None:
        """Nothing to keep."""
