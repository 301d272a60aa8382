"""Agreement of humans and classifiers on the same stimuli: Cohen's kappa, error consistency.

Error consistency (Geirhos et al. 2020): c_obs = share of trials both right or both wrong,
c_exp = p1 p2 + (1 - p1)(1 - p2), kappa_e = (c_obs - c_exp) / (1 - c_exp).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats import bootstrap_mean_ci


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


def error_consistency(correct1: np.ndarray, correct2: np.ndarray) -> dict[str, float]:
    """Error consistency of two observers' correctness (n,) 0/1 on the same trials.

    Returns c_obs, c_exp, kappa_e, and each observer's accuracy p1, p2.
    """
    c1 = np.asarray(correct1, float)
    c2 = np.asarray(correct2, float)
    if c1.shape != c2.shape or c1.ndim != 1 or c1.size == 0:
        raise ValueError("error_consistency needs two non-empty 0/1 arrays of the same length")
    p1, p2 = c1.mean(), c2.mean()
    c_obs = float((c1 == c2).mean())
    c_exp = float(p1 * p2 + (1 - p1) * (1 - p2))
    kappa = (c_obs - c_exp) / (1 - c_exp) if c_exp < 1 else np.nan
    return {"c_obs": c_obs, "c_exp": c_exp, "kappa_e": float(kappa), "p1": float(p1),
            "p2": float(p2)}


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
    with np.errstate(invalid="ignore", divide="ignore"):
        out["kappa_e"] = np.where(out["c_exp"] < 1,
                                  (out["c_obs"] - out["c_exp"]) / (1 - out["c_exp"]), np.nan)
    return out.reset_index()


def human_vs_classifier(
    trials: pd.DataFrame, predictions: pd.DataFrame, n_boot: int = 1000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare human real/fake decisions with classifiers' decisions on the same stimuli.

    trials: real/fake trials (participant, stimulus_id, source, answer, correct);
    predictions: one row per (classifier, stimulus_id) with `answer` real/fake.
    Returns (per_stimulus, summary). per_stimulus: classifier, stimulus_id, source,
    human_accuracy, n_trials, classifier_correct. summary per classifier: n_trials,
    human_accuracy, classifier_accuracy, cohen_kappa (on trial decisions), kappa_e (error
    consistency per participant averaged, with bootstrap CI over participants), kappa_e_pooled.
    """
    need = {"classifier", "stimulus_id", "answer"}
    missing = need - set(predictions.columns)
    if missing:
        raise ValueError(f"classifier predictions: missing column(s) {', '.join(sorted(missing))}")
    preds = predictions[["classifier", "stimulus_id", "answer"]].rename(
        columns={"answer": "clf_answer"})
    t = trials[["participant", "stimulus_id", "source", "answer", "correct"]]
    m = t.merge(preds, on="stimulus_id", how="inner")
    m["clf_correct"] = ((m["clf_answer"] == "fake") == (m["source"] == "model")).astype(float)
    per_stim = (m.groupby(["classifier", "stimulus_id", "source"], sort=True)
                .agg(n_trials=("correct", "size"), human_accuracy=("correct", "mean"),
                     classifier_correct=("clf_correct", "first"))
                .reset_index())
    rows = []
    for clf, g in m.groupby("classifier", sort=True):  # a handful of classifiers
        per_p = error_consistency_by(g, "participant", "correct", "clf_correct")
        mean, lo, hi = bootstrap_mean_ci(per_p["kappa_e"].to_numpy(), n_boot, seed)
        pooled = error_consistency(g["correct"].to_numpy(), g["clf_correct"].to_numpy())
        rows.append({
            "classifier": clf, "n_trials": len(g), "n_participants": len(per_p),
            "human_accuracy": g["correct"].mean(), "classifier_accuracy": g["clf_correct"].mean(),
            "cohen_kappa": cohen_kappa(g["answer"].to_numpy(str), g["clf_answer"].to_numpy(str)),
            "kappa_e": mean, "kappa_e_lo": lo, "kappa_e_hi": hi,
            "kappa_e_pooled": pooled["kappa_e"],
        })
    return per_stim, pd.DataFrame(rows)
