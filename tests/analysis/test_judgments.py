"""Signal detection, HYPE error rates, staircases and the mixed model: references and recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from analysis import judgments, simulate
from analysis.stats import resample_weights


def test_sdt_log_linear_by_hand():
    out = judgments.sdt(40, 50, 10, 50)
    h, f = 40.5 / 51, 10.5 / 51
    assert out["dprime"] == pytest.approx(norm.ppf(h) - norm.ppf(f), abs=1e-12)
    assert out["criterion"] == pytest.approx(-(norm.ppf(h) + norm.ppf(f)) / 2, abs=1e-12)
    raw = judgments.sdt(50, 50, 0, 50, correction="none")
    assert np.isinf(raw["dprime"])
    assert np.isfinite(judgments.sdt(50, 50, 0, 50)["dprime"])


def _trials(seed=0, n_p=30, n_t=120, d=1.5, c=0.3):
    rng = np.random.default_rng(seed)
    return simulate.realfake_trials(simulate.stimuli(60, 60), n_p, n_t, d, c, rng)


def test_sdt_table_counts_and_rates_equal_pandas():
    t = _trials()
    tab = judgments.sdt_table(t, ["model"], n_boot=50).set_index("model")
    reals = t[t["source"] == "real"]
    for model in ("ddpm", "cfgdm"):
        fk = t[t["model"] == model]
        assert tab.loc[model, "hits"] == (fk["answer"] == "fake").sum()
        assert tab.loc[model, "n_noise"] == len(reals)  # all reals are the noise for a model
        h = (fk["answer"] == "fake").mean()
        fa = (reals["answer"] == "fake").mean()
        assert tab.loc[model, "H"] == pytest.approx(h) and tab.loc[model, "F"] == pytest.approx(fa)
        errors = (fk["correct"] == 0).sum() + (reals["correct"] == 0).sum()
        assert tab.loc[model, "hype_inf"] == pytest.approx(errors / (len(fk) + len(reals)))
        want = judgments.sdt((fk["answer"] == "fake").sum(), len(fk),
                             (reals["answer"] == "fake").sum(), len(reals))
        assert tab.loc[model, "dprime"] == pytest.approx(want["dprime"], abs=1e-12)
    by_class = judgments.sdt_table(t, ["class_label"], n_boot=20).set_index("class_label")
    assert by_class.loc["class1", "n_noise"] == ((t["source"] == "real") &
                                                 (t["class_label"] == "class1")).sum()
    overall = judgments.sdt_table(t, [], n_boot=20)
    assert overall.loc[0, "accuracy"] == pytest.approx(t["correct"].mean())


def test_participant_bootstrap_matches_a_naive_loop():
    t = _trials(n_p=8, n_t=40)
    tab = judgments.sdt_table(t, [], n_boot=200, seed=3)
    rng = np.random.default_rng(3)
    parts = pd.factorize(t["participant"])[1]
    w = resample_weights(len(parts), 200, rng).astype(int)  # the same draws, resampled by hand
    ds = []
    for row in w:
        sample = pd.concat([t[t["participant"] == p] for p, k in zip(parts, row, strict=True)
                            for _ in range(k)])
        s, n = sample[sample["source"] == "model"], sample[sample["source"] == "real"]
        ds.append(judgments.sdt((s["answer"] == "fake").sum(), len(s),
                                (n["answer"] == "fake").sum(), len(n))["dprime"])
    lo, hi = np.quantile(ds, [0.025, 0.975])
    assert tab.loc[0, "dprime_lo"] == pytest.approx(lo, abs=1e-9)
    assert tab.loc[0, "dprime_hi"] == pytest.approx(hi, abs=1e-9)


@pytest.mark.parametrize("d,c", [(1.0, 0.0), (2.0, -0.4)])
def test_observers_give_back_their_dprime_and_criterion(d, c):
    covered_d = covered_c = 0
    runs = 40
    for seed in range(runs):
        tab = judgments.sdt_table(_trials(seed, 20, 100, d, c), [], resample=(
            "participant", "stimulus"), n_boot=300, seed=seed)
        covered_d += tab.loc[0, "dprime_lo"] <= d <= tab.loc[0, "dprime_hi"]
        covered_c += tab.loc[0, "criterion_lo"] <= c <= tab.loc[0, "criterion_hi"]
    assert covered_d / runs >= 0.85 and covered_c / runs >= 0.85


def test_staircase_threshold_by_hand():
    e = [500, 400, 300, 400, 300, 200, 300, 300]
    t = pd.DataFrame({"participant": "a", "condition": "timed", "trial_index": range(8),
                      "exposure_ms": e})
    # reversals: down->up after 300, up->down after 400, down->up after 200 (the flat step
    # at the end is no reversal)
    out = judgments.staircase_thresholds(t, n_reversals=2).iloc[0]
    assert out["n_reversals"] == 3 and out["threshold_ms"] == pytest.approx(300.0)
    assert judgments.staircase_thresholds(t, 6).iloc[0]["threshold_ms"] == pytest.approx(300.0)
    constant = t.assign(participant="b", exposure_ms=500.0)
    assert judgments.staircase_thresholds(constant).empty


def test_staircase_recovers_the_707_percent_point():
    rng = np.random.default_rng(0)
    t = simulate.staircase_trials(simulate.stimuli(20, 20), 200, 120, 400.0, rng)
    thr = judgments.staircase_thresholds(t, n_reversals=8)
    want = 400.0 + 60.0 * np.log(0.414 / 0.586)  # P(correct) = 0.707 on the simulated curve
    summ = judgments.summarise_thresholds(thr, n_boot=300)
    assert abs(summ.loc[0, "threshold_ms"] - want) < 25
    assert summ.loc[0, "n_participants"] == 200


def test_accuracy_by_exposure_bins():
    t = pd.DataFrame({"exposure_ms": [120, 180, 250, 260], "source": "real",
                      "correct": [1.0, 0.0, 1.0, 1.0]})
    out = judgments.accuracy_by_exposure(t, 100)
    assert out["exposure_ms"].tolist() == [150.0, 250.0]
    assert out["accuracy"].tolist() == [0.5, 1.0] and out["n"].tolist() == [2, 2]


def test_mixed_logit_equals_statsmodels_formula_fit():
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    t = _trials(n_p=12, n_t=40)
    ours = judgments.mixed_logit(t, ["source"])
    ref = BinomialBayesMixedGLM.from_formula(
        "correct ~ C(source)", {"participant": "0 + C(participant)",
                                "stimulus_id": "0 + C(stimulus_id)"}, t).fit_vb()
    # statsmodels' own formula interface and default optimiser (BFGS) reach the same optimum
    np.testing.assert_allclose(ours.fixed["mean"], ref.fe_mean, atol=1e-6)
    np.testing.assert_allclose(ours.fixed["sd"], ref.fe_sd, atol=1e-6)
    # the variance parameters are flatter in the objective: two optimisers stop within 1e-5
    np.testing.assert_allclose(ours.random["log_sd"], ref.vcp_mean, atol=1e-5)


def test_mixed_logit_recovers_a_fixed_effect():
    rng = np.random.default_rng(1)
    n_p, n_s, per = 60, 80, 80
    p = np.repeat(np.arange(n_p), per)
    s = rng.integers(0, n_s, n_p * per)
    fake = s % 2
    eta = 0.3 + 1.0 * fake + rng.normal(0, 0.7, n_p)[p] + rng.normal(0, 0.5, n_s)[s]
    y = (rng.random(len(p)) < 1 / (1 + np.exp(-eta))).astype(float)
    df = pd.DataFrame({"participant": p.astype(str), "stimulus_id": s.astype(str),
                       "source": np.where(fake, "real", "model"), "correct": y})
    res = judgments.mixed_logit(df, ["source"])
    fe = res.fixed.set_index("term")["mean"]
    assert fe["C(source)[T.real]"] == pytest.approx(1.0, abs=0.3)
    assert res.random.set_index("group").loc["participant", "sd"] == pytest.approx(0.7, abs=0.3)


def test_resample_weights_are_bootstrap_counts():
    w = resample_weights(50, 4000, np.random.default_rng(0))
    assert w.shape == (4000, 50) and (w.sum(axis=1) == 50).all()
    # each unit's count is Binomial(50, 1/50): mean 1, variance 0.98
    assert w.mean() == pytest.approx(1.0) and w.var() == pytest.approx(0.98, abs=0.03)


def test_fixed_design_reference_level():
    df = pd.DataFrame({"model": ["real", "ddpm", "cfgdm", "real"]})
    x = judgments.fixed_design(df, ["model"], {"model": "real"})
    assert list(x.columns) == ["Intercept", "C(model)[T.cfgdm]", "C(model)[T.ddpm]"]
    assert x["C(model)[T.ddpm]"].tolist() == [0, 1, 0, 0]
    assert list(judgments.fixed_design(df, ["model"]).columns)[1] == "C(model)[T.ddpm]"
