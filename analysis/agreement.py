"""Agreement of humans and classifiers on the same stimuli: Cohen's kappa, error consistency.

Error consistency (Geirhos et al. 2020): c_obs = share of trials both right or both wrong,
c_exp = p1 p2 + (1 - p1)(1 - p2), kappa_e = (c_obs - c_exp) / (1 - c_exp).

When c_obs = 1 kappa_e is 1, as in model-vs-human (`ErrorConsistency.error_consistency` in
bethgelab/model-vs-human returns 1.0 whenever the observed consistency is 1). This covers the
only case where the formula divides by zero: c_exp = 1 needs p1 = p2 = 1 (both always right) or
p1 = p2 = 0 (both always wrong), and then c_obs = 1 too. Such a pair made no error that one
made and the other did not, so the 1 says "never disagreed", not "erred on the same trials";
`n_no_disagreement` counts these pairs so a reader can see how many enter a mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from analysis import realfake
from analysis.stats import percentile_ci, resample_weights


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two raters' labels a, b (n,) of any hashable type."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError("cohen_kappa needs two non-empty label arrays of the same length")
    labels, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    k = len(labels)
    ca, cb = codes[: a.size], codes[a.size :]
    table = np.bincount(ca * k + cb, minlength=k * k).reshape(k, k) / a.size
    p_obs = np.trace(table)
    p_exp = table.sum(axis=1) @ table.sum(axis=0)
    return float((p_obs - p_exp) / (1 - p_exp)) if p_exp < 1 else np.nan


def kappa_e(c_obs: np.ndarray, c_exp: np.ndarray) -> np.ndarray:
    """kappa_e = (c_obs - c_exp) / (1 - c_exp) elementwise, 1 where c_obs = 1 (see the module
    docstring); NaN where c_obs is NaN (no trials)."""
    c_obs, c_exp = np.asarray(c_obs, float), np.asarray(c_exp, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = (c_obs - c_exp) / (1 - c_exp)
    return np.where(c_obs == 1, 1.0, k)


def error_consistency(correct1: np.ndarray, correct2: np.ndarray) -> dict[str, float]:
    """Error consistency of two observers' correctness (n,) 0/1 on the same trials.

    Returns c_obs, c_exp, kappa_e, and each observer's accuracy p1, p2. kappa_e is 1 when
    c_obs is 1 (model-vs-human's convention, which also covers c_exp = 1).
    """
    c1 = np.asarray(correct1, float)
    c2 = np.asarray(correct2, float)
    if c1.shape != c2.shape or c1.ndim != 1 or c1.size == 0:
        raise ValueError("error_consistency needs two non-empty 0/1 arrays of the same length")
    p1, p2 = c1.mean(), c2.mean()
    c_obs = float((c1 == c2).mean())
    c_exp = float(p1 * p2 + (1 - p1) * (1 - p2))
    return {"c_obs": c_obs, "c_exp": c_exp, "kappa_e": float(kappa_e(c_obs, c_exp)),
            "p1": float(p1), "p2": float(p2)}


def error_consistency_by(df: pd.DataFrame, by: str, col1: str, col2: str) -> pd.DataFrame:
    """Error consistency per group (e.g. per participant), vectorised with groupby.

    df: one row per trial with 0/1 columns col1 and col2. Columns: by, n, p1, p2, c_obs,
    c_exp, kappa_e.
    """
    x = df[[by]].copy()
    x["a"], x["b"] = df[col1].astype(float), df[col2].astype(float)
    x["same"] = (x["a"] == x["b"]).astype(float)
    g = x.groupby(by, sort=True)
    out = g.agg(n=("a", "size"), p1=("a", "mean"), p2=("b", "mean"), c_obs=("same", "mean"))
    out["c_exp"] = out["p1"] * out["p2"] + (1 - out["p1"]) * (1 - out["p2"])
    out["kappa_e"] = kappa_e(out["c_obs"].to_numpy(), out["c_exp"].to_numpy())
    return out.reset_index()


def participant_consistency(p: np.ndarray, s: np.ndarray, correct1: np.ndarray,
                            correct2: np.ndarray, n_p: int, n_s: int,
                            ws: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-participant error consistency with the trials of each stimulus weighted.

    p, s: (n,) participant and stimulus codes (0..n_p-1, 0..n_s-1); correct1, correct2: (n,) 0/1;
    ws: (B, n_s) stimulus weights (bootstrap counts), or None for weight 1. Returns n (weighted
    trials), p1, p2, c_obs, c_exp and kappa_e, each (B, n_p) (B = 1 without ws); NaN for a
    participant with no weighted trial. One sparse product per quantity, none per resample.
    """
    a = np.asarray(correct1, float)
    b = np.asarray(correct2, float)
    w = np.ones((1, n_s)) if ws is None else ws

    def sums(values: np.ndarray) -> np.ndarray:  # (B, n_p)
        m = sparse.csr_matrix((values, (p, s)), shape=(n_p, n_s))  # repeated cells are summed
        return np.asarray(m @ w.T).T

    n = sums(np.ones_like(a))
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2, c_obs = sums(a) / n, sums(b) / n, sums((a == b).astype(float)) / n
    c_exp = p1 * p2 + (1 - p1) * (1 - p2)
    return {"n": n, "p1": p1, "p2": p2, "c_obs": c_obs, "c_exp": c_exp,
            "kappa_e": kappa_e(c_obs, c_exp)}


def mean_kappa_ci(
    p: np.ndarray, s: np.ndarray, correct1: np.ndarray, correct2: np.ndarray,
    resample: tuple[str, ...] = ("participant", "stimulus"), n_boot: int = 1000, seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """Mean over participants of kappa_e and its percentile bootstrap CI.

    p, s: (n,) participant and stimulus ids of each trial; correct1, correct2: (n,) 0/1.
    resample: "participant" and/or "stimulus" (none: no CI). A classifier's correctness is
    fixed per stimulus and shared by every participant, so another set of stimuli gives another
    kappa_e even with the same participants: the CI must resample stimuli, and resampling both
    (two-way bootstrap, the default) also covers the choice of participants. A participant
    drawn k times counts k times in the mean; a stimulus drawn k times weighs its trials by k.
    Returns kappa_e, kappa_e_lo, kappa_e_hi, n_participants and n_no_disagreement
    (participants with c_obs = 1, whose kappa_e is 1 by convention).
    """
    p_codes, pu = pd.factorize(np.asarray(p))
    s_codes, su = pd.factorize(np.asarray(s))
    n_p, n_s = len(pu), len(su)
    point = participant_consistency(p_codes, s_codes, correct1, correct2, n_p, n_s)
    k0 = point["kappa_e"][0]
    out = {"kappa_e": float(np.nanmean(k0)) if np.isfinite(k0).any() else np.nan,
           "kappa_e_lo": np.nan, "kappa_e_hi": np.nan, "n_participants": n_p,
           "n_no_disagreement": int((point["c_obs"][0] == 1).sum())}
    if not resample or not np.isfinite(out["kappa_e"]):
        return out
    rng = np.random.default_rng(seed)
    wp = resample_weights(n_p, n_boot, rng) if "participant" in resample else np.ones(
        (n_boot, n_p))
    ws = resample_weights(n_s, n_boot, rng) if "stimulus" in resample else None
    k = participant_consistency(p_codes, s_codes, correct1, correct2, n_p, n_s, ws)["kappa_e"]
    ok = np.isfinite(k)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (np.where(ok, k, 0.0) * wp).sum(axis=1) / (ok * wp).sum(axis=1)
    lo, hi = percentile_ci(boot, level)
    out["kappa_e_lo"], out["kappa_e_hi"] = float(lo), float(hi)
    return out


def human_vs_classifier(
    trials: pd.DataFrame, predictions: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
    resample: tuple[str, ...] = ("participant", "stimulus"),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare human real/fake decisions with classifiers' decisions on the same stimuli.

    trials: real/fake trials (participant, stimulus_id, source, answer, correct);
    predictions: one row per (classifier, stimulus_id) with `answer` real/fake.
    Returns (per_stimulus, summary). per_stimulus: classifier, stimulus_id, source,
    human_accuracy, n_trials, classifier_correct. summary per classifier: n_trials,
    n_participants, n_stimuli, human_accuracy, classifier_accuracy, cohen_kappa (on trial
    decisions), kappa_e (error consistency per participant, averaged) with kappa_e_lo/_hi (95%
    bootstrap CI resampling `resample`: by default participants and stimuli), kappa_e_pooled
    (all trials as one pair) and n_no_disagreement (participants with c_obs = 1, whose
    kappa_e is 1 by convention).
    """
    need = {"classifier", "stimulus_id", "answer"}
    missing = need - set(predictions.columns)
    if missing:
        raise ValueError(f"classifier predictions: missing column(s) {', '.join(sorted(missing))}")
    preds = predictions[["classifier", "stimulus_id", "answer"]].rename(
        columns={"answer": "clf_answer"})
    t = trials[["participant", "stimulus_id", "source", "answer", "correct"]]
    m = t.merge(preds, on="stimulus_id", how="inner")
    m["clf_correct"] = realfake.is_right(m["clf_answer"], m["source"]).astype(float)
    per_stim = (m.groupby(["classifier", "stimulus_id", "source"], sort=True)
                .agg(n_trials=("correct", "size"), human_accuracy=("correct", "mean"),
                     classifier_correct=("clf_correct", "first"))
                .reset_index())
    rows = []
    for clf, g in m.groupby("classifier", sort=True):  # a handful of classifiers
        human, machine = g["correct"].to_numpy(float), g["clf_correct"].to_numpy(float)
        ec = mean_kappa_ci(g["participant"].to_numpy(), g["stimulus_id"].to_numpy(), human,
                           machine, resample, n_boot, seed)
        rows.append({
            "classifier": clf, "n_trials": len(g), "n_participants": ec["n_participants"],
            "n_stimuli": g["stimulus_id"].nunique(),
            "human_accuracy": human.mean(), "classifier_accuracy": machine.mean(),
            "cohen_kappa": cohen_kappa(g["answer"].to_numpy(str), g["clf_answer"].to_numpy(str)),
            "kappa_e": ec["kappa_e"], "kappa_e_lo": ec["kappa_e_lo"],
            "kappa_e_hi": ec["kappa_e_hi"],
            "kappa_e_pooled": error_consistency(human, machine)["kappa_e"],
            "n_no_disagreement": ec["n_no_disagreement"],
        })
    return per_stim, pd.DataFrame(rows)
