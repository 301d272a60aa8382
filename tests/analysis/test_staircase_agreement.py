"""The server's staircase and the analysis of its export agree on reversals and threshold."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from analysis import judgments, load, synthetic_exports
from analysis import staircase as shared

server = pytest.importorskip("study.staircase")
settings = pytest.importorskip("study.settings")


def _serve(answers: list[bool], cfg) -> tuple[pd.DataFrame, dict]:
    """Run the server's staircase over `answers`; the export's rows and the final state.

    Each exported row holds the exposure the trial was served at and whether the answer was
    right, as study/export.py writes them.
    """
    state = server.initial_state(cfg)
    exposures = []
    for correct in answers:
        exposures.append(state["exposure_ms"])
        state = server.update(state, correct, cfg)
    rows = pd.DataFrame({"participant": "a", "condition": "timed",
                         "trial_index": np.arange(len(answers)), "exposure_ms": exposures,
                         "correct": np.asarray(answers, float)})
    return rows, state


def _rule(cfg) -> shared.StaircaseRule:
    return shared.StaircaseRule(**{f.name: getattr(cfg, f.name)
                                   for f in dataclasses.fields(shared.StaircaseRule)})


def test_the_server_uses_the_shared_definition():
    assert server.update is shared.update
    assert server.threshold is shared.threshold
    assert server.initial_state is shared.initial_state
    # the analysis's defaults are the server's
    assert _rule(settings.StaircaseSettings()) == shared.StaircaseRule()


def test_a_reversal_on_the_last_trial_is_counted():
    cfg = settings.StaircaseSettings(enabled=True, up=1, down=1, step_ms=100, start_ms=500,
                                     n_reversals_threshold=2)
    # 1-up-1-down: 500 right -> 400 right -> 300 wrong (reversal at 300) -> 400 right
    # (reversal at 400): the last reversal changes no exposure that the export shows
    rows, state = _serve([True, True, False, True], cfg)
    assert state["reversals"] == [300.0, 400.0]
    out = judgments.staircase_thresholds(rows, _rule(cfg)).iloc[0]
    assert out["n_reversals"] == 2
    assert out["threshold_ms"] == pytest.approx(server.threshold(state, cfg)) == 350.0
    assert out["note"] == ""


def test_a_reversal_at_a_bound_is_counted():
    cfg = settings.StaircaseSettings(enabled=True, up=1, down=1, step_ms=100, start_ms=1000,
                                     n_reversals_threshold=6)
    # a wrong answer at the maximum is a step up that the bound cancels: the next step down
    # reverses the direction although no exposure went up
    rows, state = _serve([False, True, True, False, False], cfg)
    assert state["reversals"] == [1000.0, 800.0]
    out = judgments.staircase_thresholds(rows, _rule(cfg)).iloc[0]
    assert out["n_reversals"] == 2 and out["threshold_ms"] == pytest.approx(900.0)


@pytest.mark.parametrize("up,down", [(1, 1), (1, 2), (1, 3), (2, 1)])
def test_server_and_analysis_agree_on_random_answer_sequences(up, down):
    cfg = settings.StaircaseSettings(enabled=True, up=up, down=down, step_ms=50, start_ms=300,
                                     n_reversals_threshold=4)
    rng = np.random.default_rng(up * 10 + down)
    frames, states = [], {}
    for i in range(40):
        answers = (rng.random(int(rng.integers(3, 60))) < rng.uniform(0.3, 0.95)).tolist()
        rows, state = _serve(answers, cfg)
        frames.append(rows.assign(participant=f"p{i}"))
        states[f"p{i}"] = state
    out = judgments.staircase_thresholds(pd.concat(frames, ignore_index=True), _rule(cfg))
    out = out.set_index("participant")
    for pid, state in states.items():
        if pid not in out.index:  # exposure never moved: not recognised as a staircase
            assert state["reversals"] == [] and not any(
                r["exposure_ms"].nunique() > 1 for r in frames if r["participant"][0] == pid)
            continue
        assert out.loc[pid, "n_reversals"] == len(state["reversals"])
        want = server.threshold(state, cfg)
        got = out.loc[pid, "threshold_ms"]
        assert (np.isnan(got) if want is None else got == pytest.approx(want)), pid
    assert len(out) >= 30


def test_settings_that_do_not_reproduce_the_exposures_are_reported():
    cfg = settings.StaircaseSettings(enabled=True, up=1, down=2, step_ms=50)
    rows, _ = _serve([True, True, False, True, True, True, True, False], cfg)
    out = judgments.staircase_thresholds(rows, shared.StaircaseRule(down=3)).iloc[0]
    assert np.isnan(out["threshold_ms"]) and "do not reproduce" in out["note"]


def test_agreement_through_the_study_export_writer_and_the_loader(tmp_path):
    export = pytest.importorskip("study.export")
    cfg = settings.StaircaseSettings(enabled=True, up=1, down=3, step_ms=50, start_ms=500,
                                     n_reversals_threshold=6)
    rng = np.random.default_rng(11)
    trials = synthetic_exports.realfake_trials(synthetic_exports.stimuli(10, 10), 5, 70, 1.0, 0.0, rng)
    states = {}
    for pid, rows in trials.groupby("participant"):  # the served exposures and right answers
        answers = (rng.random(len(rows)) < 0.8).tolist()
        served, states[pid] = _serve(answers, cfg)
        trials.loc[rows.index, "exposure_ms"] = served["exposure_ms"].to_numpy()
        trials.loc[rows.index, "correct"] = served["correct"].to_numpy()
    trials["condition"] = "timed"
    said_fake = (trials["correct"] == 1) == (trials["source"] == "model")
    trials["answer"] = np.where(said_fake, "fake", "real")
    records = trials.astype(object).where(trials.notna(), None).to_dict("records")
    for row in records:
        for key in ("steps", "seed", "correct"):
            row[key] = None if row[key] is None else int(row[key])
    with open(tmp_path / "trials.csv", "w", newline="") as fh:
        export.write_csv("trials", iter([records]), fh)
    loaded = judgments.judgment_trials(load.load_export(tmp_path).trials)
    out = judgments.staircase_thresholds(loaded, _rule(cfg)).set_index("participant")
    assert len(out) == 5 and (out["note"] == "").all()
    for pid, state in states.items():
        assert out.loc[pid, "n_reversals"] == len(state["reversals"])
        assert out.loc[pid, "threshold_ms"] == pytest.approx(server.threshold(state, cfg))


def test_measured_exposures_a_frame_off_still_give_the_servers_threshold():
    """The export holds the exposure the browser measured (whole display frames), not the one
    the server set; the replay still recognises the staircase and reports the server's values."""
    cfg = settings.StaircaseSettings(enabled=True, up=1, down=2, step_ms=50, start_ms=500,
                                     n_reversals_threshold=4)
    rng = np.random.default_rng(7)
    answers = (rng.random(40) < 0.75).tolist()
    rows, state = _serve(answers, cfg)
    frame = 1000 / 60
    measured = rows.assign(exposure_ms=np.ceil(rows["exposure_ms"] / frame) * frame + rng.uniform(0, 4, len(rows)))
    out = judgments.staircase_thresholds(measured, _rule(cfg)).iloc[0]
    assert out["note"] == ""
    assert out["n_reversals"] == len(state["reversals"]) > 2
    assert out["threshold_ms"] == pytest.approx(server.threshold(state, cfg))
