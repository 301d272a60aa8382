"""Signal detection, HYPE error rates, staircases and the mixed model: references and recovery."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from analysis import judgments, synthetic_exports
from analysis.staircase import StaircaseRule
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
    return synthetic_exports.realfake_trials(synthetic_exports.stimuli(60, 60), n_p, n_t, d, c, rng)


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
        err_fake, err_real = (fk["correct"] == 0).mean(), (reals["correct"] == 0).mean()
        assert tab.loc[model, "hype_inf"] == pytest.approx((err_fake + err_real) / 2)
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


def test_sdt_is_undefined_without_noise_or_signal_trials():
    out = judgments.sdt([5, 0, 5], [10, 0, 10], [0, 3, 3], [0, 10, 10])
    # no reals (noise), no fakes (signal): no rate to correct, so no d' and no c
    assert np.isnan(out["dprime"][:2]).all() and np.isnan(out["criterion"][:2]).all()
    assert np.isnan(out["H"][1]) and np.isnan(out["F"][0])
    assert out["dprime"][2] == pytest.approx(judgments.sdt(5, 10, 3, 10)["dprime"])


def test_a_class_without_reals_is_undefined_with_a_note():
    t = _trials(n_p=10, n_t=80)
    t = t[~((t["source"] == "real") & (t["class_label"] == "class1"))]
    tab = judgments.sdt_table(t, ["class_label"], n_boot=50).set_index("class_label")
    row = tab.loc["class1"]
    assert row["n_noise"] == 0 and row["n_signal"] > 0
    for col in ("dprime", "criterion", "dprime_mean_participant", "hype_inf", "F",
                "dprime_lo", "dprime_hi", "hype_inf_lo"):
        assert np.isnan(row[col]), col
    assert "no real" in row["note"]
    assert row["H"] == pytest.approx((t.loc[(t["class_label"] == "class1") & (
        t["source"] == "model"), "answer"] == "fake").mean())
    others = tab.drop(index="class1")
    assert (others["note"] == "").all() and np.isfinite(others["dprime_lo"]).all()


@pytest.mark.parametrize("only", ["model", "real"])
@pytest.mark.parametrize("by", [[], ["model"], ["class_label"], ["participant"]])
@pytest.mark.parametrize("resample", [(), ("participant",), ("stimulus",),
                                      ("participant", "stimulus")])
def test_trials_of_one_source_give_undefined_rows_with_a_note(only, by, resample):
    t = _trials(n_p=6, n_t=40)
    t = t[t["source"] == only]
    tab = judgments.sdt_table(t, by, resample=resample, n_boot=20)
    if only == "real" and by == ["model"]:
        # reals have no model: the groups are the fakes' models, and there are none
        assert tab.empty and {"dprime", "note"} <= set(tab.columns)
        assert ("dprime_lo" in tab.columns) == bool(resample)
        return
    assert len(tab) == (t[by[0]].nunique() if by else 1)
    missing = "no fake (signal)" if only == "real" else "no real (noise)"
    assert tab["note"].str.contains(missing, regex=False).all()
    for col in ("dprime", "criterion", "hype_inf", "dprime_mean_participant"):
        assert tab[col].isna().all(), col
    if resample:
        assert tab["dprime_lo"].isna().all() and tab["dprime_hi"].isna().all()


def test_a_class_without_fakes_is_undefined_with_a_note():
    t = _trials(n_p=10, n_t=80)
    t = t[~((t["source"] == "model") & (t["class_label"] == "class2"))]
    tab = judgments.sdt_table(t, ["class_label"], n_boot=50).set_index("class_label")
    row = tab.loc["class2"]
    assert row["n_signal"] == 0 and row["n_noise"] > 0
    for col in ("dprime", "criterion", "H", "hype_inf", "dprime_lo", "dprime_hi"):
        assert np.isnan(row[col]), col
    assert "no fake" in row["note"]
    assert row["F"] == pytest.approx((t.loc[(t["class_label"] == "class2") & (
        t["source"] == "real"), "answer"] == "fake").mean())
    assert (tab.drop(index="class2")["note"] == "").all()


def _weighted_dprime(t, w_trial):
    """d' (pooled, log-linear) of trials weighted by (B, n) weights; NaN where a kind is empty."""
    sig = (t["source"] == "model").to_numpy()
    yes = (t["answer"] == "fake").to_numpy().astype(float)
    hits, n_s = w_trial @ (yes * sig), w_trial @ sig.astype(float)
    fa, n_n = w_trial @ (yes * ~sig), w_trial @ (~sig).astype(float)
    return judgments.sdt(hits, n_s, fa, n_n)["dprime"]


def test_participant_resamples_that_empty_a_group_are_dropped_from_its_ci():
    t = _trials(seed=4, n_p=10, n_t=60)
    # only p0 and p1 saw reals of class1: a resample without both empties the group's noise
    t = t[~((t["source"] == "real") & (t["class_label"] == "class1")
            & ~t["participant"].isin(["p0", "p1"]))].reset_index(drop=True)
    tab = judgments.sdt_table(t, ["class_label"], n_boot=400, seed=5).set_index("class_label")
    rng = np.random.default_rng(5)
    p, parts = pd.factorize(t["participant"])
    wp = resample_weights(len(parts), 400, rng)  # the participant draws sdt_table makes
    g = (t["class_label"] == "class1").to_numpy()
    d = _weighted_dprime(t[g], wp[:, p[g]])
    kept = d[np.isfinite(d)]
    assert tab.loc["class1", "n_boot_dropped"] == 400 - len(kept) > 20
    lo, hi = np.quantile(kept, [0.025, 0.975])
    assert tab.loc["class1", "dprime_lo"] == pytest.approx(lo, abs=1e-9)
    assert tab.loc["class1", "dprime_hi"] == pytest.approx(hi, abs=1e-9)
    assert (tab.drop(index="class1")["n_boot_dropped"] == 0).all()


def test_stimulus_resampling_stays_within_strata():
    codes = np.array([0, 0, 0, 1, 2, 2, 1, 2])
    w = judgments.stratified_resample_weights(codes, 3000, np.random.default_rng(0))
    for k in range(3):
        assert (w[:, codes == k].sum(axis=1) == (codes == k).sum()).all()
    assert w[:, 3].std() > 0.5  # units of a stratum are drawn with replacement
    # stratum of size n: each unit's count is Binomial(n, 1/n)
    assert w[:, codes == 2].mean() == pytest.approx(1.0, abs=0.03)
    assert w[:, codes == 2].var() == pytest.approx(2 / 3, abs=0.05)
    # a class with a single real image keeps it in every stimulus resample
    t = _trials(seed=2, n_p=12, n_t=80)
    lone = (t["source"] == "real") & (t["class_label"] == "class1")
    t = t[~lone | (t["stimulus_id"] == t.loc[lone, "stimulus_id"].iloc[0])]
    tab = judgments.sdt_table(t, ["class_label"], resample=("stimulus",), n_boot=300)
    row = tab.set_index("class_label").loc["class1"]
    assert row["n_boot_dropped"] == 0
    assert row["F_lo"] == row["F"] == row["F_hi"]  # participants are not resampled here
    # only the fakes vary, so d' stays within the range their hit rates allow
    z_f = norm.ppf((row["false_alarms"] + 0.5) / (row["n_noise"] + 1))
    assert row["dprime_hi"] <= norm.ppf(row["H_hi"]) - z_f + 0.05


def test_sdt_by_participant_resamples_trials_within_participant():
    rng = np.random.default_rng(7)
    n_p = 150
    d = rng.uniform(0.8, 2.2, n_p)
    t = synthetic_exports.realfake_trials(synthetic_exports.stimuli(60, 60), n_p, 200, d,
                                 rng.normal(0, 0.3, n_p), rng)
    tab = judgments.sdt_table(t, ["participant"], n_boot=400, seed=1)
    tab = tab.set_index("participant").loc[[f"p{i}" for i in range(n_p)]]
    assert (tab["dprime_lo"] > 0.2).all()  # no resample loses the participant
    covered = ((tab["dprime_lo"] <= d) & (d <= tab["dprime_hi"])).mean()
    assert 0.88 <= covered <= 0.995
    # one participant per group: the pooled and the mean-of-participants d' are one number
    np.testing.assert_allclose(tab["dprime_mean_participant"], tab["dprime_pooled"])
    with pytest.raises(ValueError, match="resample"):
        judgments.sdt_table(t, [], resample=("trials",))


def test_hype_inf_is_the_mean_of_the_fake_and_real_error_rates():
    # 8 fakes with 2 errors (error on fakes 0.25), 2 reals with 1 error (error on reals 0.5)
    t = pd.DataFrame({"participant": "a", "stimulus_id": [f"s{i}" for i in range(10)],
                      "source": ["model"] * 8 + ["real"] * 2, "model": ["m"] * 8 + [""] * 2,
                      "answer": ["fake"] * 6 + ["real"] * 2 + ["fake", "real"]})
    row = judgments.sdt_table(t, ["model"], resample=()).iloc[0]
    assert row["error_fake"] == 0.25 and row["error_real"] == 0.5
    assert row["hype_inf"] == pytest.approx(0.375)  # not the 3 errors / 10 trials
    assert row["accuracy"] == pytest.approx(0.7)


def test_pooled_and_mean_participant_dprime():
    rng = np.random.default_rng(3)
    n_p = 40
    crit = np.where(np.arange(n_p) % 2, 1.0, -1.0)  # criteria differ between participants
    t = synthetic_exports.realfake_trials(synthetic_exports.stimuli(60, 60), n_p, 200, 1.5, crit, rng)
    row = judgments.sdt_table(t, [], n_boot=200).iloc[0]
    per = []
    for _, g in t.groupby("participant"):
        sig = g["source"] == "model"
        per.append(judgments.sdt((g.loc[sig, "answer"] == "fake").sum(), sig.sum(),
                                 (g.loc[~sig, "answer"] == "fake").sum(), (~sig).sum()))
    assert row["dprime_mean_participant"] == pytest.approx(np.mean([p["dprime"] for p in per]))
    assert row["criterion_mean_participant"] == pytest.approx(
        np.mean([p["criterion"] for p in per]))
    assert row["dprime"] == row["dprime_pooled"] and row["criterion"] == row["criterion_pooled"]
    # pooling observers with different criteria flattens the pooled ROC point (d' about 0.94)
    assert row["dprime_pooled"] < 1.1 < 1.4 < row["dprime_mean_participant"]
    assert row["dprime_mean_participant_lo"] < row["dprime_mean_participant"] < row[
        "dprime_mean_participant_hi"]


def test_mean_participant_dprime_ci_covers_the_true_dprime():
    covered_mean = covered_pooled = 0
    runs = 40
    for seed in range(runs):
        rng = np.random.default_rng(100 + seed)
        crit = rng.choice([-0.8, 0.8], 20)
        t = synthetic_exports.realfake_trials(synthetic_exports.stimuli(60, 60), 20, 160, 1.5, crit, rng)
        row = judgments.sdt_table(t, [], n_boot=300, seed=seed).iloc[0]
        covered_mean += row["dprime_mean_participant_lo"] <= 1.5 <= row[
            "dprime_mean_participant_hi"]
        covered_pooled += row["dprime_pooled_lo"] <= 1.5 <= row["dprime_pooled_hi"]
    assert covered_mean / runs >= 0.85
    assert covered_pooled / runs <= 0.5  # the pooled d' answers another question


def test_two_way_bootstrap_matches_a_naive_loop():
    t = _trials(seed=6, n_p=8, n_t=40)
    tab = judgments.sdt_table(t, [], resample=("participant", "stimulus"), n_boot=100, seed=2)
    rng = np.random.default_rng(2)
    p, parts = pd.factorize(t["participant"])
    s, stims = pd.factorize(t["stimulus_id"])
    wp = resample_weights(len(parts), 100, rng)
    # stimuli are drawn within their stratum: here real or fake
    source = t.groupby(s)["source"].first().to_numpy()
    ws = judgments.stratified_resample_weights(pd.factorize(source)[0], 100, rng)
    w = wp[:, p] * ws[:, s]  # (B, n) weight of each trial
    pooled = _weighted_dprime(t, w)
    # a participant drawn k times counts k times in the mean of their (unscaled) d'
    per = np.stack([_weighted_dprime(t[p == i], ws[:, s[p == i]]) for i in range(len(parts))],
                   1)
    wpp = np.where(np.isfinite(per), wp, 0.0)
    mean = (wpp * np.nan_to_num(per)).sum(axis=1) / wpp.sum(axis=1)
    for name, values in (("dprime_pooled", pooled), ("dprime_mean_participant", mean)):
        lo, hi = np.quantile(values, [0.025, 0.975])
        assert tab.loc[0, f"{name}_lo"] == pytest.approx(lo, abs=1e-9), name
        assert tab.loc[0, f"{name}_hi"] == pytest.approx(hi, abs=1e-9), name


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
    # 1-up-1-down, 100 ms steps from 500: right, right, wrong, wrong, right, right, wrong
    t = pd.DataFrame({"participant": "a", "condition": "timed", "trial_index": range(7),
                      "exposure_ms": [500, 400, 300, 400, 500, 400, 300],
                      "correct": [1, 1, 0, 0, 1, 1, 0]})
    rule = StaircaseRule(up=1, down=1, step_ms=100, n_reversals_threshold=2)
    # reversals: up after 300, down after 500, up after 300 (the last answer's)
    out = judgments.staircase_thresholds(t, rule).iloc[0]
    assert out["n_reversals"] == 3 and out["threshold_ms"] == pytest.approx(400.0)
    six = judgments.staircase_thresholds(t, replace(rule, n_reversals_threshold=6)).iloc[0]
    assert six["threshold_ms"] == pytest.approx(1100 / 3)
    constant = t.assign(participant="b", exposure_ms=500.0)
    assert judgments.staircase_thresholds(constant, rule).empty


def test_staircase_rule_given_then_recorded_then_default():
    rng = np.random.default_rng(7)
    two = StaircaseRule(down=2)
    stim = synthetic_exports.stimuli(10, 10)
    t = pd.concat([
        synthetic_exports.staircase_trials(stim, 3, 60, 400.0, rng, rule=two).assign(condition="two"),
        synthetic_exports.staircase_trials(stim, 3, 60, 400.0, rng).assign(
            condition="three", participant=lambda d: d["participant"] + "x"),
        synthetic_exports.staircase_trials(stim, 3, 60, 400.0, rng, rule=two).assign(
            condition="off", participant=lambda d: d["participant"] + "y"),
    ], ignore_index=True)
    # condition "three" is not listed: the study's own settings (1-up-3-down) hold for it
    recorded = {("sim", ""): StaircaseRule(), ("sim", "two"): two, ("sim", "off"): None}
    out = judgments.staircase_thresholds(t, recorded=recorded).set_index("participant")
    assert set(out["condition"]) == {"two", "three"}  # "off" ran no staircase: left out
    assert (out["rule_from"] == "recorded").all() and (out["note"] == "").all()
    assert (out.loc[out["condition"] == "two", "rule"] == judgments.describe_rule(two)).all()
    given = judgments.staircase_thresholds(t, two, recorded)
    assert len(given) == 9 and (given["rule_from"] == "given").all()
    assert given.loc[given["condition"] == "three", "note"].str.contains("reproduce").all()
    other = judgments.staircase_thresholds(t, recorded={("another", ""): two})
    assert (other["rule_from"] == "default").all()
    assert (other.loc[other["condition"] == "three", "note"] == "").all()


def test_each_participant_is_replayed_with_its_design_versions_staircase():
    """A study edited from 1-up-2-down to 1-up-3-down while it ran: the participants who started
    under the first version are replayed with its rule, not with the settings at export."""
    rng = np.random.default_rng(11)
    two, three = StaircaseRule(down=2), StaircaseRule(down=3)
    stim = synthetic_exports.stimuli(10, 10)
    old, new = "a" * 64, "b" * 64
    t = pd.concat([
        synthetic_exports.staircase_trials(stim, 3, 60, 400.0, rng, rule=two).assign(condition="", design_hash=old),
        synthetic_exports.staircase_trials(stim, 3, 60, 400.0, rng, rule=three).assign(
            condition="", design_hash=new, participant=lambda d: d["participant"] + "n"),
    ], ignore_index=True)
    now_only = {("sim", ""): three}
    stale = judgments.staircase_thresholds(t, recorded=now_only).set_index("participant")
    assert stale.loc[stale.index.str.endswith("n"), "note"].eq("").all()
    assert stale.loc[~stale.index.str.endswith("n"), "note"].str.contains("reproduce").all()
    versions = {**now_only, ("sim", "", old): two, ("sim", "", new): three}
    out = judgments.staircase_thresholds(t, recorded=versions).set_index("participant")
    assert len(out) == 6 and (out["note"] == "").all() and out["threshold_ms"].notna().all()
    assert (out.loc[~out.index.str.endswith("n"), "rule"] == judgments.describe_rule(two)).all()
    assert (out.loc[out.index.str.endswith("n"), "rule"] == judgments.describe_rule(three)).all()
    # a participant whose version the export does not list falls back to the settings at export
    unknown = judgments.staircase_thresholds(t.assign(design_hash="c" * 64), recorded=versions)
    assert (unknown["rule"] == judgments.describe_rule(three)).all()


@pytest.mark.parametrize("down", [2, 3])
def test_staircase_recovers_the_point_its_rule_converges_on(down):
    rng = np.random.default_rng(down)
    rule = StaircaseRule(down=down, n_reversals_threshold=8)
    t = synthetic_exports.staircase_trials(synthetic_exports.stimuli(20, 20), 200, 120, 400.0, rng, rule=rule)
    thr = judgments.staircase_thresholds(t, rule)
    assert (thr["note"] == "").all()
    # 1-up-k-down converges where P(correct) = 0.5 ** (1 / k): 70.7 % for k = 2, 79.4 % for
    # k = 3; on the simulated curve P = 0.5 + 0.5 / (1 + exp(-(e - 400) / 60)) that is
    # e = 400 + 60 * logit(2 * P - 1)
    lapse = 2 * 0.5 ** (1 / down) - 1
    want = 400.0 + 60.0 * np.log(lapse / (1 - lapse))
    summ = judgments.summarise_thresholds(thr, n_boot=300)
    assert abs(summ.loc[0, "threshold_ms"] - want) < 25
    assert summ.loc[0, "n_participants"] == 200


def test_simulated_staircase_runs_the_apps_default_rule():
    rng = np.random.default_rng(4)
    t = synthetic_exports.staircase_trials(synthetic_exports.stimuli(10, 10), 20, 60, 400.0, rng)
    thr = judgments.staircase_thresholds(t)  # the app's default settings, as the server has them
    assert len(thr) == 20 and (thr["note"] == "").all()
    assert np.isfinite(thr["threshold_ms"]).all()
    # another rule does not reproduce the simulated exposures
    other = judgments.staircase_thresholds(t, StaircaseRule(down=2))
    assert other["threshold_ms"].isna().all() and other["note"].str.contains("reproduce").all()


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
    np.testing.assert_allclose(ours.fixed["vb_sd"], ref.fe_sd, atol=1e-6)
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


def _crossed(rng, n_p=12, n_s=16, per=20, b=(0.3, 1.0), sd_p=0.7, sd_s=0.5):
    """Crossed participants x stimuli; logit P(correct) = b0 + b1 * real + u_p + v_s."""
    p = np.repeat(np.arange(n_p), per)
    s = rng.integers(0, n_s, n_p * per)
    real = s % 2
    eta = b[0] + b[1] * real + rng.normal(0, sd_p, n_p)[p] + rng.normal(0, sd_s, n_s)[s]
    y = (rng.random(len(p)) < 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"participant": p.astype(str), "stimulus_id": s.astype(str),
                         "source": np.where(real, "real", "model"), "correct": y})


def test_laplace_covariance_is_the_inverse_joint_hessian():
    from scipy.special import expit

    rng = np.random.default_rng(0)
    df = _crossed(rng)
    x = judgments.fixed_design(df, ["source"]).to_numpy()
    z, ident = judgments.random_design(df, ["participant", "stimulus_id"])
    beta, u, sd = np.array([0.2, 0.9]), rng.normal(0, 0.5, z.shape[1]), np.array([0.7, 0.4])
    got = judgments.laplace_fixed_cov(x, z, ident, beta, u, sd, fe_prior_sd=2.0)
    # dense joint Hessian of -log p(y, u | beta) - log prior(beta), inverted whole
    xz = np.hstack([x, z.toarray()])
    w = expit(xz @ np.concatenate([beta, u]))
    h = xz.T @ (xz * (w * (1 - w))[:, None])
    h += np.diag(np.concatenate([np.full(2, 1 / 4), 1 / sd[ident] ** 2]))
    np.testing.assert_allclose(got, np.linalg.inv(h)[:2, :2], rtol=1e-9)


def test_mixed_logit_intervals_cover_the_true_fixed_effects():
    truth = np.array([0.3, 1.0])  # Intercept, C(source)[T.real]
    est, se, vb, covered = [], [], [], []
    for seed in range(20):
        fe = judgments.mixed_logit(_crossed(np.random.default_rng(seed)), ["source"],
                                   minim_opts={}).fixed
        est.append(fe["mean"]), se.append(fe["se_laplace"]), vb.append(fe["vb_sd"])
        covered.append((fe["lo"] <= truth) & (truth <= fe["hi"]))
        np.testing.assert_allclose(fe["hi"] - fe["mean"], 1.96 * fe["se_laplace"], rtol=1e-3)
    spread = np.std(est, axis=0, ddof=1)  # the real sampling SD of the estimates
    assert np.mean(covered) >= 0.8
    ratio = np.mean(se, axis=0) / spread
    assert ((ratio > 0.7) & (ratio < 1.45)).all(), ratio
    assert (np.mean(vb, axis=0) / spread < 0.7).all()  # why the VB SD is not reported as SE


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
