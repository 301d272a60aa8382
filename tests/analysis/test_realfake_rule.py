"""The analysis's statement of the real-or-fake rule (analysis.realfake) is the study's scoring
(study.participation.scoring): the two never import each other, so this test holds them together."""

from __future__ import annotations

import numpy as np

from analysis import realfake
from study.participation import scoring


def test_the_analysis_scores_every_source_and_answer_as_the_study_does():
    for source in ("model", "real"):
        for answer in realfake.ANSWERS:
            study_says = scoring.score("realfake", "main", source, answer, practice_feedback=False).correct
            assert bool(realfake.is_right(np.array([answer]), np.array([source]))[0]) == study_says, (source, answer)


def test_fake_is_the_signal():
    assert realfake.is_fake(np.array(["model", "real"])).tolist() == [True, False]
    assert realfake.says_fake(np.array(["fake", "real", ""])).tolist() == [True, False, False]
