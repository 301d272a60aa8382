"""The server-side staircase: the rule's steps, bounds, and convergence on a known threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from study.settings import StaircaseSettings
from study.staircase import initial_state, threshold, update


def test_three_down_one_up_steps_and_bounds() -> None:
    cfg = StaircaseSettings(enabled=True, up=1, down=3, step_ms=100, start_ms=300)
    s = initial_state(cfg)
    for _ in range(2):
        s = update(s, True, cfg)
    assert s["exposure_ms"] == 300  # two correct: no step yet
    s = update(s, True, cfg)
    assert s["exposure_ms"] == 200
    for _ in range(9):
        s = update(s, True, cfg)
    assert s["exposure_ms"] == cfg.min_ms  # clamped at 100
    s = update(s, False, cfg)
    assert s["exposure_ms"] == 200 and s["reversals"] == [100.0]
    assert threshold(s, cfg) == 100.0
    for _ in range(20):
        s = update(s, False, cfg)
    assert s["exposure_ms"] == cfg.max_ms


def test_update_does_not_modify_its_input() -> None:
    cfg = StaircaseSettings(enabled=True)
    s0 = initial_state(cfg)
    update(s0, False, cfg)
    assert s0 == initial_state(cfg)


def _p_correct(exposure: float, alpha: float, beta: float) -> float:
    """2AFC Weibull observer: chance 0.5 at zero exposure, 1 at long exposures."""
    return 0.5 + 0.5 * (1.0 - math.exp(-((exposure / alpha) ** beta)))


@pytest.mark.parametrize("alpha", [220.0, 450.0])
def test_converges_on_simulated_observer_threshold(alpha: float) -> None:
    beta = 2.0
    cfg = StaircaseSettings(enabled=True, up=1, down=3, step_ms=20, start_ms=800,
                            n_reversals_threshold=12)
    # Exposure at which this observer is right 0.5 ** (1/3) = 79.4 % of the time.
    target = 0.5 ** (1 / 3)
    true_x = alpha * (-math.log(2 * (1 - target))) ** (1 / beta)
    rng = np.random.default_rng(7)
    estimates = []
    for _ in range(20):
        s = initial_state(cfg)
        for _ in range(300):
            correct = rng.random() < _p_correct(s["exposure_ms"], alpha, beta)
            s = update(s, bool(correct), cfg)
        estimates.append(threshold(s, cfg))
    est = float(np.mean(estimates))
    assert abs(est - true_x) < 0.08 * true_x, (est, true_x)
