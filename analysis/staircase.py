"""The adaptive staircase on exposure time (ms): one definition for the server and the analysis.

Transformed up/down rule (Levitt 1971): after `down` correct answers in a row the exposure gets
shorter by `step_ms`, after `up` wrong answers in a row it gets longer; it stays in
[min_ms, max_ms]. With up=1 the track converges on the exposure where
P(correct) = 0.5 ** (1 / down) (79.4 % for 1-up-3-down).

A reversal is a step in the direction opposite to the previous step; its level is the exposure
at which the answer that caused it was given. A step that the bounds cancel still counts as a
step (the exposure stays put but the direction is what the rule says). The threshold is the mean
level of the last `n_reversals_threshold` reversals.

The state is a JSON-able dict, so the server keeps it in the database between requests and the
analysis can rebuild it from an export by replaying each participant's answers (`replay`). This
module imports nothing beyond the standard library: the study app uses it on every answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, Protocol


class Rule(Protocol):
    """What the staircase functions read from a settings object (StaircaseRule or the study's
    StaircaseSettings)."""

    up: int
    down: int
    step_ms: float
    min_ms: float
    max_ms: float
    start_ms: float
    n_reversals_threshold: int


@dataclass(frozen=True)
class StaircaseRule:
    """A staircase's settings; the defaults are the study app's defaults."""

    up: int = 1
    down: int = 3
    step_ms: float = 50.0
    min_ms: float = 100.0
    max_ms: float = 1000.0
    start_ms: float = 500.0
    n_reversals_threshold: int = 6

    def __post_init__(self) -> None:
        for name in ("up", "down", "n_reversals_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"staircase.{name}: must be an integer >= 1, not {value!r}")
        for name in ("step_ms", "min_ms", "max_ms", "start_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"staircase.{name}: must be a number >= 0, not {value!r}")
        if self.min_ms > self.max_ms:
            raise ValueError("staircase.min_ms: must not exceed staircase.max_ms")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StaircaseRule:
        """From the study's `staircase` settings JSON; `enabled` is accepted and ignored."""
        if not isinstance(raw, dict):
            raise ValueError(f"staircase: must be a JSON object, not {raw!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known - {"enabled"})
        if unknown:
            raise ValueError(f"staircase.{unknown[0]}: unknown setting (known: "
                             f"{', '.join(sorted(known))})")
        return cls(**{k: v for k, v in raw.items() if k in known})


def initial_state(rule: Rule, start_ms: float | None = None) -> dict[str, Any]:
    """The state before the first answer, at `start_ms` (default: rule.start_ms)."""
    return {
        "exposure_ms": float(rule.start_ms if start_ms is None else start_ms),
        "n_trials": 0,
        "correct_run": 0,
        "wrong_run": 0,
        "direction": 0,  # -1 after the last step down (harder), +1 after a step up, 0 before any
        "reversals": [],  # exposures (ms) of the answers that reversed the direction
    }


def update(state: dict[str, Any], correct: bool, rule: Rule) -> dict[str, Any]:
    """The state after one answer at `state["exposure_ms"]`; the input is not modified."""
    new = {**state, "reversals": list(state["reversals"]), "n_trials": state["n_trials"] + 1}
    step = 0
    if correct:
        new["correct_run"] = state["correct_run"] + 1
        new["wrong_run"] = 0
        if new["correct_run"] >= rule.down:
            step, new["correct_run"] = -1, 0
    else:
        new["wrong_run"] = state["wrong_run"] + 1
        new["correct_run"] = 0
        if new["wrong_run"] >= rule.up:
            step, new["wrong_run"] = 1, 0
    if step:
        if state["direction"] and step != state["direction"]:
            new["reversals"].append(state["exposure_ms"])
        new["direction"] = step
        exposure = state["exposure_ms"] + step * rule.step_ms
        new["exposure_ms"] = float(min(rule.max_ms, max(rule.min_ms, exposure)))
    return new


def threshold(state: dict[str, Any], rule: Rule) -> float | None:
    """Mean exposure at the last `n_reversals_threshold` reversals; None before any reversal."""
    reversals = state.get("reversals") or []
    if not reversals:
        return None
    last = reversals[-rule.n_reversals_threshold :]
    return float(sum(last) / len(last))


def replay(start_ms: float, answers: Iterable[bool], rule: Rule
           ) -> tuple[list[float], dict[str, Any]]:
    """Run the staircase over a participant's answers from `start_ms`.

    Returns the exposure each answer was given at (what the export's exposure_ms shows) and the
    state after the last answer (what the server holds: it includes a reversal caused by the
    last answer, which no exposure in the export shows).
    """
    state = initial_state(rule, start_ms)
    shown = []
    for correct in answers:
        shown.append(state["exposure_ms"])
        state = update(state, bool(correct), rule)
    return shown, state
