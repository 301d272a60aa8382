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
