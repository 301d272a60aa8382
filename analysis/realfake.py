"""The real-or-fake judgment as the exports record it: a stimulus whose `source` is a model is
fake (the signal), any other is real; `answer` is "real" or "fake". Arrays in, boolean arrays out.

The study scores answers by the same rule (study.participation.scoring). The analysis reads
exports and never imports the study, so the rule is stated here once for the analysis, and
analysis.load checks every stored `correct` against it."""

from __future__ import annotations

import numpy as np
import pandas as pd

FAKE_SOURCE = "model"
FAKE_ANSWER = "fake"
ANSWERS = ("real", FAKE_ANSWER)


def is_fake(source: pd.Series | np.ndarray) -> np.ndarray:
    """(N,) bool: the stimulus is a model's image (the signal in detection terms)."""
    return np.asarray(source) == FAKE_SOURCE


def says_fake(answer: pd.Series | np.ndarray) -> np.ndarray:
    """(N,) bool: the answer is "fake" (a "yes" in detection terms)."""
    return np.asarray(answer) == FAKE_ANSWER


def is_right(answer: pd.Series | np.ndarray, source: pd.Series | np.ndarray) -> np.ndarray:
    """(N,) bool: "fake" for a model's image or "real" for any other. Meaningful only where the
    answer is one of ANSWERS."""
    return says_fake(answer) == is_fake(source)
