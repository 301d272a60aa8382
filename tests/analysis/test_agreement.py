"""Cohen's kappa and error consistency: references and simulated classifiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from analysis import agreement


def test_cohen_kappa_matches_sklearn():
    rng = np.random.default_rng(0)
    a = rng.choice(["real", "fake", "unsure"], 200)
    b = np.where(rng.random(200) < 0.6, a, rng.choice(["real", "fake", "unsure"], 200))
    assert agreement.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    with pytest.raises(ValueError):
        agreement.cohen_kappa(a, b[:10])


def test_error_consistency_by_hand():
    c1 = np.array([1, 1, 1, 0, 0, 1, 1, 0])
    c2 = np.array([1, 1, 0, 0, 1, 1, 1, 0])
    out = agreement.error_consistency(c1, c2)
    c_obs = 6 / 8
    c_exp = (5 / 8) * (5 / 8) + (3 / 8) * (3 / 8)
    assert out["c_obs"] == pytest.approx(c_obs)
    assert out["kappa_e"] == pytest.approx((c_obs - c_exp) / (1 - c_exp), abs=1e-12)


def _human(rng, n_p=30, n_s=200, per=100):
    p = np.repeat(np.arange(n_p), per)
    s = rng.integers(0, n_s, len(p))
    source = np.where(s % 2, "model", "real")
    correct = (rng.random(len(p)) < 0.75).astype(float)
    answer = np.where((source == "model") == (correct == 1), "fake", "real")
    return pd.DataFrame({"participant": p.astype(str), "stimulus_id": s.astype(str),
                         "source": source, "answer": answer, "correct": correct})


def test_copying_classifier_has_error_consistency_near_one_independent_near_zero():
    rng = np.random.default_rng(1)
    t = _human(rng)
    copy = agreement.error_consistency(t["correct"], t["correct"].to_numpy())
    assert copy["kappa_e"] == pytest.approx(1.0)
    indep = (rng.random(len(t)) < 0.75).astype(float)
    out = agreement.error_consistency(t["correct"], indep)
    assert abs(out["kappa_e"]) < 0.05
    # a classifier that errs on 90% of the human errors, and is otherwise right
    mimic = np.where(t["correct"] == 0, (rng.random(len(t)) > 0.9).astype(float), 1.0)
    assert agreement.error_consistency(t["correct"], mimic)["kappa_e"] > 0.8


def test_error_consistency_by_group_equals_the_scalar_function():
    rng = np.random.default_rng(2)
    t = _human(rng, n_p=4, per=50)
    t["clf"] = (rng.random(len(t)) < 0.7).astype(float)
    out = agreement.error_consistency_by(t, "participant", "correct", "clf").set_index(
        "participant")
    for p, g in t.groupby("participant"):
        want = agreement.error_consistency(g["correct"], g["clf"])
        assert out.loc[p, "kappa_e"] == pytest.approx(want["kappa_e"], abs=1e-12)


def test_human_vs_classifier_per_stimulus():
    rng = np.random.default_rng(3)
    t = _human(rng, n_p=20, n_s=60, per=60)
    # per-stimulus classifier that answers what most humans answered on the stimulus
    majority = t.groupby("stimulus_id")["answer"].agg(lambda a: a.value_counts().index[0])
    preds = pd.DataFrame({"classifier": "majority", "stimulus_id": majority.index,
                          "answer": majority.to_numpy()})
    truth = t.drop_duplicates("stimulus_id").set_index("stimulus_id")["source"]
    preds_ok = pd.DataFrame({"classifier": "oracle", "stimulus_id": truth.index,
                             "answer": np.where(truth == "model", "fake", "real")})
    per, summ = agreement.human_vs_classifier(t, pd.concat([preds, preds_ok]), n_boot=100)
    s = summ.set_index("classifier")
    assert s.loc["oracle", "classifier_accuracy"] == 1.0
    # a perfect observer: c_obs = c_exp = p1, so no consistency beyond chance
    assert s.loc["oracle", "kappa_e_pooled"] == pytest.approx(0.0, abs=1e-12)
    want = agreement.cohen_kappa(
        t["answer"].to_numpy(), t["stimulus_id"].map(majority).to_numpy())
    assert s.loc["majority", "cohen_kappa"] == pytest.approx(want, abs=1e-12)
    assert len(per) == 2 * t["stimulus_id"].nunique()
    with pytest.raises(ValueError, match="answer"):
        agreement.human_vs_classifier(t, preds.drop(columns="answer"))


def test_no_disagreement_gives_kappa_one_as_model_vs_human():
    # c_exp = 1 (both always right, or both always wrong): model-vs-human returns 1 whenever
    # c_obs = 1, so the formula's 0/0 is never reached
    for value in (1.0, 0.0):
        c = np.full(10, value)
        out = agreement.error_consistency(c, c)
        assert out["c_obs"] == 1.0 and out["c_exp"] == 1.0 and out["kappa_e"] == 1.0
    # c_obs = 1 with c_exp < 1: the formula gives 1 too
    c = np.array([1, 0, 1, 1.0])
    assert agreement.error_consistency(c, c)["kappa_e"] == 1.0
    df = pd.DataFrame({"p": ["a"] * 4 + ["b"] * 4, "x": [1, 1, 1, 1, 1, 0, 1, 0.0],
                       "y": [1, 1, 1, 1, 0, 0, 1, 1.0]})
    by = agreement.error_consistency_by(df, "p", "x", "y").set_index("p")
    assert by.loc["a", "kappa_e"] == 1.0
    # b: p1 = 1/2, p2 = 1/2, c_obs = 1/2 -> c_exp = 1/2, kappa 0
    assert by.loc["b", "kappa_e"] == pytest.approx(0.0, abs=1e-12)
    trials = pd.DataFrame({"participant": ["a"] * 4 + ["b"] * 4,
                           "stimulus_id": ["s0", "s1", "s2", "s3"] * 2,
                           "source": ["model", "real"] * 4,
                           "correct": df["x"].to_numpy()})
    trials["answer"] = np.where((trials["source"] == "model") == (trials["correct"] == 1),
                                "fake", "real")
    preds = pd.DataFrame({"classifier": "oracle", "stimulus_id": ["s0", "s1", "s2", "s3"],
                          "answer": ["fake", "real", "fake", "real"]})
    _, summ = agreement.human_vs_classifier(trials, preds, n_boot=50)
    row = summ.iloc[0]
    # a: always right like the oracle (kappa 1); b: p1 = 1/2, p2 = 1, c_obs = 1/2 (kappa 0)
    assert row["kappa_e"] == pytest.approx(0.5) and row["n_no_disagreement"] == 1


def test_participant_consistency_with_stimulus_weights_equals_repeating_the_trials():
    rng = np.random.default_rng(7)
    t = _human(rng, n_p=5, n_s=12, per=30)
    t["clf"] = (rng.random(len(t)) < 0.7).astype(float)
    p, pu = pd.factorize(t["participant"])
    s, su = pd.factorize(t["stimulus_id"])
    ws = rng.integers(0, 3, (2, len(su))).astype(float)
    got = agreement.participant_consistency(p, s, t["correct"], t["clf"], len(pu), len(su), ws)
    for b in range(2):
        rep = t.loc[t.index.repeat(ws[b][s].astype(int))]
        want = agreement.error_consistency_by(rep, "participant", "correct", "clf")
        want = want.set_index("participant").reindex(pu)
        for col in ("p1", "p2", "c_obs", "c_exp", "kappa_e"):
            np.testing.assert_allclose(got[col][b], want[col].to_numpy(), atol=1e-12)
    point = agreement.participant_consistency(p, s, t["correct"], t["clf"], len(pu), len(su))
    by = agreement.error_consistency_by(t, "participant", "correct", "clf")
    np.testing.assert_allclose(point["kappa_e"][0],
                               by.set_index("participant")["kappa_e"].reindex(pu), atol=1e-12)
    ci = agreement.mean_kappa_ci(t["participant"], t["stimulus_id"], t["correct"], t["clf"],
                                 n_boot=200)
    assert ci["kappa_e"] == pytest.approx(by["kappa_e"].mean(), abs=1e-12)
    assert ci["kappa_e_lo"] < ci["kappa_e"] < ci["kappa_e_hi"]


def _stimulus_sets(rng, n_sets, n_s=80, n_p=20, per=40):
    """Trials of n_sets independent studies, each with its own participants and n_s stimuli,
    and one classifier per study (named after it) that decides on that study's stimuli.

    Human accuracy varies across stimuli (probit 0.8 + z_s, z_s ~ N(0, 1)) and participants;
    the classifier is right on a stimulus with probability 0.75, independently of everything,
    so its error consistency with the humans is 0 in the population of stimuli.
    """
    z = rng.standard_normal((n_sets, n_s))
    clf_right = rng.random((n_sets, n_s)) < 0.75
    sets = np.repeat(np.arange(n_sets), n_p * per)
    p = np.tile(np.repeat(np.arange(n_p), per), n_sets)
    s = rng.integers(0, n_s, len(p))
    ability = rng.normal(0, 0.3, (n_sets, n_p))
    correct = rng.standard_normal(len(p)) < 0.8 + z[sets, s] + ability[sets, p]
    source = np.where(s % 2, "model", "real")
    trials = pd.DataFrame({
        "participant": np.char.add(sets.astype(str), np.char.add("-p", p.astype(str))),
        "stimulus_id": np.char.add(sets.astype(str), np.char.add("-s", s.astype(str))),
        "source": source, "correct": correct.astype(float),
        "answer": np.where((source == "model") == correct, "fake", "real")})
    ss = np.repeat(np.arange(n_sets), n_s)
    si = np.tile(np.arange(n_s), n_sets)
    fake = si % 2 == 1
    preds = pd.DataFrame({
        "classifier": np.char.add("set", ss.astype(str)),
        "stimulus_id": np.char.add(ss.astype(str), np.char.add("-s", si.astype(str))),
        "answer": np.where(clf_right.ravel() == fake, "fake", "real")})
    return trials, preds


def test_error_consistency_ci_covers_an_independent_classifier_across_stimulus_sets():
    # the classifier's correctness is fixed per stimulus and shared by all participants, so a
    # CI over participants alone covers 0 in only ~65% of stimulus sets here; the two-way
    # bootstrap (participants x stimuli) is slightly conservative (~0.97)
    rng = np.random.default_rng(11)
    trials, preds = _stimulus_sets(rng, 250)
    _, summ = agreement.human_vs_classifier(trials, preds, n_boot=400, seed=1)
    assert len(summ) == 250 and (summ["classifier_accuracy"].between(0.5, 0.95)).all()
    covered = (summ["kappa_e_lo"] <= 0.0) & (0.0 <= summ["kappa_e_hi"])
    assert 0.925 <= covered.mean() <= 0.995, covered.mean()
    assert abs(summ["kappa_e"].mean()) < 0.02  # no bias: the truth is 0
