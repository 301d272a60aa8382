"""Generalization (Boutin et al. 2023): recognizability, diversity, originality, curves; and
sample quality in an in-repo encoder's feature space: Frechet distance, KID, FD-infinity.

Features are arrays computed elsewhere (e.g. the SimCLR encoder); nothing here runs a network.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def originality(features: np.ndarray, exemplar_features: np.ndarray) -> np.ndarray:
    """Euclidean distance (n,) of each sample's features (n, d) to its exemplar's (n, d)."""
    f = np.asarray(features, np.float64)
    e = np.asarray(exemplar_features, np.float64)
    if f.shape != e.shape:
        raise ValueError(f"features {f.shape} and exemplar features {e.shape} differ in shape")
    return np.linalg.norm(f - e, axis=1)


def diversity(features: np.ndarray, groups: np.ndarray, ddof: int = 1) -> pd.Series:
    """Per group: mean over feature dimensions of the SD across the group's samples.

    features: (n, d); groups: (n,) labels (e.g. model|guidance|class). Returns a Series indexed
    by group (groups with fewer than ddof + 1 samples give NaN).
    """
    f = pd.DataFrame(np.asarray(features, np.float64))
    return f.groupby(np.asarray(groups), sort=True).std(ddof=ddof).mean(axis=1, skipna=False)


def generalization_curve(
    df: pd.DataFrame, by: list[str] | None = None, n_bins: int = 10
) -> pd.DataFrame:
    """10-bin generalization curves: recognizability against originality.

    df: one row per sample with class_label, originality (float) and correct (0/1, the
    one-shot critic's answer) and the `by` columns (default ["model", "guidance"]). Within each
    (by, class) the samples are sorted by originality and cut into n_bins equal-count bins.
    Columns: by, bin, n, originality (mean), recognizability (mean correct), recognizability_se.
    """
    by = ["model", "guidance"] if by is None else list(by)
    keys = by + ["class_label"]
    d = df.copy()
    for col in by:
        if d[col].isna().any():
            d[col] = d[col].astype(object).where(d[col].notna(), "")
    rank = d.groupby(keys, sort=False)["originality"].rank(method="first") - 1
    size = d.groupby(keys, sort=False)["originality"].transform("size")
    d["bin"] = (rank * n_bins // size).astype(int)
    g = d.groupby(by + ["bin"], sort=True)
    out = g.agg(n=("correct", "size"), originality=("originality", "mean"),
                recognizability=("correct", "mean")).reset_index()
    sd = g["correct"].std(ddof=1).to_numpy()
    out["recognizability_se"] = sd / np.sqrt(out["n"].to_numpy())
    return out


def diversity_recognizability(
    df: pd.DataFrame, features: np.ndarray, by: list[str] | None = None
) -> pd.DataFrame:
    """Diversity and recognizability per (by, class): one point of the Boutin scatter.

    df: one row per sample (aligned with features (n, d)) with class_label, correct and `by`.
    Columns: by, class_label, n, diversity, recognizability.
    """
    by = ["model", "guidance"] if by is None else list(by)
    keys = by + ["class_label"]
    d = df[keys + ["correct"]].copy()
    for col in by:
        d[col] = d[col].astype(object).where(d[col].notna(), "")
    code = d.groupby(keys, sort=True).ngroup().to_numpy()
    g = d.groupby(keys, sort=True)
    out = g.agg(n=("correct", "size"), recognizability=("correct", "mean")).reset_index()
    out["diversity"] = diversity(features, code).to_numpy()
    return out[keys + ["n", "diversity", "recognizability"]]


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_from_moments(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray
                         ) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) for means (d,) and covariances (d, d).

    tr (S1 S2)^(1/2) is computed as sum sqrt(eig(S1^(1/2) S2 S1^(1/2))), a symmetric PSD matrix,
    which avoids the complex round-off of a general matrix square root.
    """
    r = _sqrt_psd(s1)
    w = np.linalg.eigvalsh(r @ s2 @ r)
    tr_sqrt = np.sqrt(np.clip(w, 0, None)).sum()
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to features x (n, d) and y (m, d)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return frechet_from_moments(x.mean(0), np.cov(x, rowvar=False), y.mean(0),
                                np.cov(y, rowvar=False))


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        k = a @ b.T
        k /= d
        k += 1
        return k * k * k

    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def kid(x: np.ndarray, y: np.ndarray, subset_size: int = 1000, n_subsets: int = 100,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3.

    Averaged over `n_subsets` random subsets of `subset_size` rows of each of x (n, d), y (m, d)
    (capped at the smaller size). Returns (mean, sd over subsets).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise ValueError("KID needs at least 2 samples on each side")
    rng = np.random.default_rng(seed)
    vals = np.array([
        _mmd2_unbiased(x[rng.choice(len(x), size, replace=False)],
                       y[rng.choice(len(y), size, replace=False)])
        for _ in range(n_subsets)
    ])
    return float(vals.mean()), float(vals.std())


def fd_infinity(x: np.ndarray, y: np.ndarray, ns: np.ndarray | None = None, seed: int = 0
                ) -> dict[str, object]:
    """FD-infinity (Chong & Forsyth 2020): FD_N of N-sample subsets of x against all of y, a
    line FD_N = fd_inf + slope / N fitted by least squares, its intercept at 1/N = 0.

    x: (n, d) generated features; y: (m, d) reference; ns: subset sizes (default 8 sizes from
    n/5 to n). Returns fd_inf, slope, ns, fd (arrays).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = len(x)
    if ns is None:
        ns = np.unique(np.linspace(max(n // 5, 2), n, 8).astype(int))
    ns = np.asarray(ns, int)
    if len(ns) < 2 or ns.max() > n or ns.min() < 2:
        raise ValueError("fd_infinity needs at least two subset sizes between 2 and len(x)")
    rng = np.random.default_rng(seed)
    mu_y, s_y = y.mean(0), np.cov(y, rowvar=False)
    fd = np.array([
        frechet_from_moments(*(lambda s: (s.mean(0), np.cov(s, rowvar=False)))(
            x[rng.choice(n, k, replace=False)]), mu_y, s_y)
        for k in ns
    ])
    slope, intercept = np.polyfit(1.0 / ns, fd, 1)
    return {"fd_inf": float(intercept), "slope": float(slope), "ns": ns, "fd": fd}
