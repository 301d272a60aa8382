"""Adaptive staircase on exposure time (ms), run on the server; pure functions on a JSON state.

Transformed up/down rule (Levitt 1971): after `down` correct answers in a row the exposure gets
shorter by `step_ms`, after `up` wrong answers in a row it gets longer; it stays in
[min_ms, max_ms]. With up=1 the track converges on the exposure where
P(correct) = 0.5 ** (1 / down) (79.4 % for 1-up-3-down). The state lives in
`Participant.staircase` so that any worker can serve the next trial (the app is stateless).
"""

from __future__ import annotations

from typing import Any

from study.settings import StaircaseSettings


def initial_state(cfg: StaircaseSettings) -> dict[str, Any]:
    return {
        "exposure_ms": float(cfg.start_ms),
        "n_trials": 0,
        "correct_run": 0,
        "wrong_run": 0,
        "direction": 0,  # -1 after the last step down (harder), +1 after a step up, 0 before any
        "reversals": [],  # exposures (ms) at which the direction changed
    }


def update(state: dict[str, Any], correct: bool, cfg: StaircaseSettings) -> dict[str, Any]:
    """The state after one answer at `state["exposure_ms"]`; the input is not modified."""
    new = {**state, "reversals": list(state["reversals"]), "n_trials": state["n_trials"] + 1}
    step = 0
    if correct:
        new["correct_run"] = state["correct_run"] + 1
        new["wrong_run"] = 0
        if new["correct_run"] >= cfg.down:
            step, new["correct_run"] = -1, 0
    else:
        new["wrong_run"] = state["wrong_run"] + 1
        new["correct_run"] = 0
        if new["wrong_run"] >= cfg.up:
            step, new["wrong_run"] = 1, 0
    if step:
        if state["direction"] and step != state["direction"]:
            new["reversals"].append(state["exposure_ms"])
        new["direction"] = step
        exposure = state["exposure_ms"] + step * cfg.step_ms
        new["exposure_ms"] = float(min(cfg.max_ms, max(cfg.min_ms, exposure)))
    return new


def threshold(state: dict[str, Any], cfg: StaircaseSettings) -> float | None:
    """Mean exposure at the last `n_reversals_threshold` reversals; None before any reversal."""
    reversals = state.get("reversals") or []
    if not reversals:
        return None
    last = reversals[-cfg.n_reversals_threshold :]
    return float(sum(last) / len(last))
