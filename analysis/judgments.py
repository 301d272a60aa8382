"""Real-or-fake judgments: signal detection, HYPE error rates, staircase thresholds, mixed logit.

"fake" is the signal: H = P(say fake | fake), F = P(say fake | real). Counts are summed with
groupby/bincount and sparse matrix products; bootstrap resamples are weight matrices, so no
Python loop runs per trial or per resample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import norm

from analysis.stats import percentile_ci, resample_weights

COUNTS = ("hits", "n_signal", "false_alarms", "n_noise")


def sdt(hits: np.ndarray, n_signal: np.ndarray, false_alarms: np.ndarray, n_noise: np.ndarray,
        correction: str = "loglinear") -> dict[str, np.ndarray]:
    """d' and criterion c from counts (any matching shapes).

    loglinear (Hautus 1995): H = (hits + 0.5) / (n_signal + 1), F likewise;
    none: raw rates (infinite d' at 0 or 1). d' = z(H) - z(F); c = -(z(H) + z(F)) / 2.
    Returns H, F (as used), dprime, criterion.
    """
    hits, n_signal = np.asarray(hits, float), np.asarray(n_signal, float)
    fa, n_noise = np.asarray(false_alarms, float), np.asarray(n_noise, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if correction == "loglinear":
            h, f = (hits + 0.5) / (n_signal + 1), (fa + 0.5) / (n_noise + 1)
        elif correction == "none":
            h, f = hits / n_signal, fa / n_noise
        else:
            raise ValueError(f"correction must be loglinear or none, not {correction!r}")
    zh, zf = norm.ppf(h), norm.ppf(f)
    with np.errstate(invalid="ignore"):
        return {"H": h, "F": f, "dprime": zh - zf, "criterion": -(zh + zf) / 2}


def judgment_trials(trials: pd.DataFrame, kinds: tuple[str, ...] = ("main",)) -> pd.DataFrame:
    """The real/fake trials that count: task realfake, trial_kind in `kinds`, answered."""
    keep = (trials["task"] == "realfake") & trials["trial_kind"].isin(kinds) & trials[
        "answer"].isin(["real", "fake"])
    return trials.loc[keep].reset_index(drop=True)


def _group_codes(df: pd.DataFrame, by: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """(n,) group code per row and the (n_groups, len(by)) key table, NaN kept as a level."""
    if not by:
        return np.zeros(len(df), np.int64), pd.DataFrame(index=[0])
    grouped = df.groupby(by, dropna=False, sort=True)
    codes = grouped.ngroup().to_numpy(np.int64)
    keys = grouped.size().reset_index()[by]
    return codes, keys


def _weighted_sums(p: np.ndarray, s: np.ndarray, values: np.ndarray, group: np.ndarray,
                   n_groups: int, n_p: int, n_s: int, wp: np.ndarray | None,
                   ws: np.ndarray | None) -> np.ndarray:
    """Per-group sums of `values` (n,) under participant weights wp (B, P) and stimulus
    weights ws (B, S): (B, n_groups); with wp None: (1, n_groups) plain sums."""
    if wp is None:
        return np.bincount(group, weights=values, minlength=n_groups)[None, :]
    if ws is None:
        per_p = np.bincount(p * n_groups + group, weights=values,
                            minlength=n_p * n_groups).reshape(n_p, n_groups)
        return wp @ per_p
    out = np.empty((wp.shape[0], n_groups))
    for g in range(n_groups):  # few groups; each is one sparse product over its trials
        m = group == g
        c = sparse.csr_matrix((values[m], (p[m], s[m])), shape=(n_p, n_s))
        out[:, g] = np.einsum("pb,bp->b", c @ ws.T, wp)
    return out


@dataclass
class _Counts:
    keys: pd.DataFrame
    sums: dict[str, np.ndarray]  # name -> (B, n_groups)


def _count(rt: pd.DataFrame, by: list[str], noise_by: list[str], wp, ws) -> _Counts:
    p = rt["_p"].to_numpy()
    s = rt["_s"].to_numpy()
    n_p, n_s = int(rt.attrs["n_p"]), int(rt.attrs["n_s"])
    signal = (rt["source"] == "model").to_numpy()
    yes = (rt["answer"] == "fake").to_numpy().astype(float)
    sig, noi = rt.loc[signal], rt.loc[~signal]
    g, keys = _group_codes(sig, by)
    k, nkeys = _group_codes(noi, noise_by)
    ng, nk = len(keys), len(nkeys)
    ones_s, ones_n = np.ones(len(sig)), np.ones(len(noi))
    hits = _weighted_sums(p[signal], s[signal], yes[signal], g, ng, n_p, n_s, wp, ws)
    n_sig = _weighted_sums(p[signal], s[signal], ones_s, g, ng, n_p, n_s, wp, ws)
    fa_k = _weighted_sums(p[~signal], s[~signal], yes[~signal], k, nk, n_p, n_s, wp, ws)
    nn_k = _weighted_sums(p[~signal], s[~signal], ones_n, k, nk, n_p, n_s, wp, ws)
    if noise_by:
        nk_of_g = keys[noise_by].merge(nkeys.reset_index(), on=noise_by, how="left")["index"]
        idx = nk_of_g.fillna(-1).to_numpy(np.int64)
    else:
        idx = np.zeros(ng, np.int64)
    present = idx >= 0
    fa = np.where(present, fa_k[:, np.maximum(idx, 0)], 0.0) if nk else np.zeros_like(hits)
    nn = np.where(present, nn_k[:, np.maximum(idx, 0)], 0.0) if nk else np.zeros_like(hits)
    return _Counts(keys, {"hits": hits, "n_signal": n_sig, "false_alarms": fa, "n_noise": nn})


def _derived(c: dict[str, np.ndarray], correction: str) -> dict[str, np.ndarray]:
    d = sdt(c["hits"], c["n_signal"], c["false_alarms"], c["n_noise"], correction)
    n = c["n_signal"] + c["n_noise"]
    with np.errstate(invalid="ignore", divide="ignore"):
        errors = c["n_signal"] - c["hits"] + c["false_alarms"]
        return {
            "H": c["hits"] / c["n_signal"], "F": c["false_alarms"] / c["n_noise"],
            "dprime": d["dprime"], "criterion": d["criterion"],
            "accuracy": 1 - errors / n, "error_fake": 1 - c["hits"] / c["n_signal"],
            "error_real": c["false_alarms"] / c["n_noise"], "hype_inf": errors / n,
        }


def sdt_table(
    trials: pd.DataFrame,
    by: list[str] | None = None,
    noise_by: list[str] | None = None,
    resample: tuple[str, ...] = ("participant",),
    n_boot: int = 1000,
    seed: int = 0,
    correction: str = "loglinear",
) -> pd.DataFrame:
    """Signal detection and HYPE-infinity error rates per group with bootstrap 95% CIs.

    trials: real/fake trials (see `judgment_trials`); by: columns that group the fakes (e.g.
    ["model"], ["model", "guidance"], ["class_label"]); noise_by: columns that pick the reals
    matched to a group (default: the `by` columns the reals fill, e.g. class_label; reals have
    no model or guidance, so those groups share all reals). resample: "participant" and/or
    "stimulus" (two-way bootstrap when both). Columns: the keys, the four counts, H, F, d',
    c, accuracy, error_fake (1 - H), error_real (F), hype_inf (errors / trials), and each
    statistic's _lo/_hi CI.
    """
    by = list(by or [])
    keep = list(dict.fromkeys(by + list(noise_by or []) + ["source", "answer"]))
    rt = trials[keep].copy()  # only the columns needed: row selections stay cheap
    p, pu = pd.factorize(trials["participant"])
    s, su = pd.factorize(trials["stimulus_id"])
    rt["_p"], rt["_s"] = p, s
    rt.attrs.update(n_p=len(pu), n_s=len(su))
    if noise_by is None:
        reals = rt.loc[rt["source"] != "model"]
        noise_by = [c for c in by if len(reals) and (reals[c].astype(str).str.len() > 0).all()
                    and reals[c].notna().all()]
    point = _count(rt, by, noise_by, None, None)
    out = point.keys.copy()
    for name in COUNTS:
        out[name] = point.sums[name][0].astype(np.int64)
    stats_point = _derived(point.sums, correction)
    rng = np.random.default_rng(seed)
    wp = resample_weights(len(pu), n_boot, rng) if "participant" in resample else None
    ws = resample_weights(len(su), n_boot, rng) if "stimulus" in resample else None
    if wp is None and ws is not None:
        wp = np.ones((n_boot, len(pu)))
    boot = _derived(_count(rt, by, noise_by, wp, ws).sums, correction) if wp is not None else None
    for name, value in stats_point.items():
        out[name] = value[0]
        if boot is not None:
            lo, hi = percentile_ci(boot[name])
            out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
    return out


def staircase_thresholds(trials: pd.DataFrame, n_reversals: int = 6) -> pd.DataFrame:
    """HYPE-time: per participant, the exposure a staircase converges to.

    trials: real/fake trials; a participant whose exposure_ms varies ran a staircase. A reversal
    is a change of direction of the exposure; its level is the exposure just before the change.
    threshold_ms = mean of the last `n_reversals` reversal levels (NaN with fewer than 2).
    Columns: participant, condition, n_trials, n_reversals, threshold_ms.
    """
    df = trials.sort_values(["participant", "trial_index"], kind="stable")
    df = df.loc[df["exposure_ms"].notna()]
    varies = df.groupby("participant")["exposure_ms"].transform("nunique") > 1
    df = df.loc[varies].reset_index(drop=True)
    cols = ["participant", "condition", "n_trials", "n_reversals", "threshold_ms"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    same = df["participant"].eq(df["participant"].shift())
    step = np.sign(df["exposure_ms"].diff()).where(same)
    direction = step.replace(0, np.nan).groupby(df["participant"]).ffill()
    prev_dir = direction.groupby(df["participant"]).shift()
    rev = (direction != prev_dir) & direction.notna() & prev_dir.notna() & (step != 0)
    level = df["exposure_ms"].shift()
    revs = pd.DataFrame({"participant": df["participant"][rev], "level": level[rev]})
    revs["from_end"] = revs.groupby("participant").cumcount(ascending=False)
    last = revs.loc[revs["from_end"] < n_reversals]
    g = df.groupby("participant", sort=True)
    out = pd.DataFrame({"condition": g["condition"].first(), "n_trials": g.size()})
    out["n_reversals"] = revs.groupby("participant").size().reindex(out.index).fillna(0).astype(int)
    out["threshold_ms"] = last.groupby("participant")["level"].mean().reindex(out.index)
    out.loc[out["n_reversals"] < 2, "threshold_ms"] = np.nan
    return out.reset_index()[cols]


def summarise_thresholds(thresholds: pd.DataFrame, n_boot: int = 1000, seed: int = 0
                         ) -> pd.DataFrame:
    """Mean staircase threshold per condition with a bootstrap CI over participants."""
    from analysis.stats import bootstrap_mean_ci

    rows = []
    for cond, g in thresholds.groupby("condition", sort=True):
        mean, lo, hi = bootstrap_mean_ci(g["threshold_ms"].to_numpy(float), n_boot, seed)
        rows.append({"condition": cond, "n_participants": int(g["threshold_ms"].notna().sum()),
                     "threshold_ms": mean, "threshold_ms_lo": lo, "threshold_ms_hi": hi})
    return pd.DataFrame(rows, columns=["condition", "n_participants", "threshold_ms",
                                       "threshold_ms_lo", "threshold_ms_hi"])


def accuracy_by_exposure(trials: pd.DataFrame, bin_ms: float = 100.0) -> pd.DataFrame:
    """Accuracy per exposure bin (width bin_ms) and source with a normal-approximation 95% CI.

    Columns: exposure_ms (bin centre), source, n, accuracy, accuracy_lo, accuracy_hi.
    """
    df = trials.loc[trials["exposure_ms"].notna()]
    centre = (np.floor(df["exposure_ms"] / bin_ms) + 0.5) * bin_ms
    g = df.assign(exposure_ms=centre).groupby(["exposure_ms", "source"], sort=True)["correct"]
    out = g.agg(n="size", accuracy="mean").reset_index()
    se = np.sqrt(out["accuracy"] * (1 - out["accuracy"]) / out["n"])
    out["accuracy_lo"] = (out["accuracy"] - 1.96 * se).clip(0, 1)
    out["accuracy_hi"] = (out["accuracy"] + 1.96 * se).clip(0, 1)
    return out


@dataclass
class MixedLogit:
    """Fixed effects (term, mean, sd on the logit scale) and random-intercept SDs (name, sd)."""

    fixed: pd.DataFrame
    random: pd.DataFrame
    n_trials: int


def fixed_design(df: pd.DataFrame, fixed: list[str],
                 reference: dict[str, str] | None = None) -> pd.DataFrame:
    """Intercept plus treatment-coded dummies per column; the base level is reference[col]
    when given, else the first sorted level."""
    cols = {"Intercept": np.ones(len(df))}
    for col in fixed:
        values = df[col].astype(str)
        levels = sorted(values.unique())
        base = (reference or {}).get(col, levels[0] if levels else "")
        for level in [lv for lv in levels if lv != base]:
            cols[f"C({col})[T.{level}]"] = (values == level).to_numpy(float)
    return pd.DataFrame(cols, index=df.index)


def random_design(df: pd.DataFrame, groups: list[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Sparse indicator columns of each grouping factor and the `ident` vector of statsmodels."""
    blocks, ident = [], []
    for i, col in enumerate(groups):
        codes, uniq = pd.factorize(df[col].astype(str), sort=True)
        blocks.append(sparse.csr_matrix(
            (np.ones(len(df)), (np.arange(len(df)), codes)), shape=(len(df), len(uniq))))
        ident.append(np.full(len(uniq), i))
    return sparse.hstack(blocks).tocsr(), np.concatenate(ident).astype(int)


def mixed_logit(
    trials: pd.DataFrame,
    fixed: list[str] | None = None,
    groups: list[str] | None = None,
    outcome: str = "correct",
    fit_method: str = "L-BFGS-B",
    minim_opts: dict[str, float] | None = None,
    reference: dict[str, str] | None = None,
) -> MixedLogit:
    """Logistic mixed model of `outcome` (0/1) with crossed random intercepts.

    statsmodels BinomialBayesMixedGLM fitted by variational Bayes; fixed: categorical columns
    (default ["source"]); groups: random-intercept factors (default participant, stimulus_id).
    The design is built sparse, so large data sets fit without dense indicator matrices;
    fit_method is scipy's optimiser of the variational objective (L-BFGS-B: about 10x faster
    than statsmodels' default BFGS with thousands of random-effect levels, same optimum);
    minim_opts: its options (default tight tolerances for L-BFGS-B); reference: base level
    per fixed column (e.g. {"model": "real"}).
    """
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    fixed = ["source"] if fixed is None else fixed
    groups = ["participant", "stimulus_id"] if groups is None else groups
    df = trials.loc[trials[outcome].notna()]
    x = fixed_design(df, fixed, reference)
    z, ident = random_design(df, groups)
    model = BinomialBayesMixedGLM(df[outcome].to_numpy(float), x.to_numpy(), z, ident,
                                  fep_names=list(x.columns), vcp_names=list(groups))
    if minim_opts is None and fit_method == "L-BFGS-B":
        minim_opts = {"ftol": 1e-14, "gtol": 1e-9, "maxiter": 5000}
    res = model.fit_vb(fit_method=fit_method, minim_opts=minim_opts)
    fe = pd.DataFrame({"term": list(x.columns), "mean": res.fe_mean, "sd": res.fe_sd})
    re = pd.DataFrame({"group": list(groups), "sd": np.exp(res.vcp_mean),
                       "log_sd": res.vcp_mean, "log_sd_se": res.vcp_sd})
    return MixedLogit(fe, re, len(df))
