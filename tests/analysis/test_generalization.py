"""Generalization curves and sample-quality distances: references and recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import linalg

from analysis import generalization as gen


def test_frechet_distance_matches_a_direct_sqrtm():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    y = rng.normal(0.5, 1.5, size=(150, 6)) @ rng.normal(size=(6, 6))
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    diff = x.mean(0) - y.mean(0)
    want = diff @ diff + np.trace(s1 + s2 - 2 * covmean)
    assert gen.frechet_distance(x, y) == pytest.approx(want, abs=1e-6)
    assert gen.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_kid_matches_an_explicit_double_loop():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 3)), rng.normal(0.3, 1, size=(12, 3))

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    m = 12
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, sd = gen.kid(x, y, subset_size=12, n_subsets=3)  # full sets: every subset the same
    assert mean == pytest.approx(xx + yy - 2 * xy, abs=1e-9) and sd == pytest.approx(0, abs=1e-9)


def test_fd_infinity_is_the_intercept_and_removes_small_n_bias():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(4000, 4))
    same = rng.normal(size=(800, 4))
    out = gen.fd_infinity(same, ref, ns=np.array([100, 200, 400, 800]))
    slope, intercept = np.polyfit(1 / out["ns"], out["fd"], 1)
    assert out["fd_inf"] == pytest.approx(intercept) and out["slope"] == pytest.approx(slope)
    assert abs(out["fd_inf"]) < out["fd"][0]  # FD_N at N = 100 is biased upwards
    with pytest.raises(ValueError):
        gen.fd_infinity(same, ref, ns=np.array([100]))


def test_diversity_and_originality_equal_numpy():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(30, 5))
    groups = np.repeat(["a", "b", "c"], 10)
    div = gen.diversity(f, groups)
    for g in "abc":
        assert div[g] == pytest.approx(f[groups == g].std(axis=0, ddof=1).mean())
    e = rng.normal(size=(30, 5))
    np.testing.assert_allclose(gen.originality(f, e), np.sqrt(((f - e) ** 2).sum(1)))


def test_generalization_curve_cuts_each_class_into_equal_bins():
    n = 20
    df = pd.DataFrame({"model": "m", "guidance": 1.0, "class_label": np.repeat(["a", "b"], n),
                       "originality": np.tile(np.arange(n, dtype=float), 2),
                       "correct": np.tile((np.arange(n) < 10).astype(float), 2)})
    curve = gen.generalization_curve(df, n_bins=10)
    assert curve["bin"].tolist() == list(range(10)) and (curve["n"] == 4).all()
    np.testing.assert_allclose(curve["originality"], np.arange(10) * 2 + 0.5)
    np.testing.assert_allclose(curve["recognizability"], [1] * 5 + [0] * 5)


def test_recognizability_falls_with_originality_on_simulated_samples():
    rng = np.random.default_rng(4)
    n = 2000
    orig = rng.uniform(0, 5, n)
    correct = (rng.random(n) < 1 / (1 + np.exp(orig - 2.5))).astype(float)
    df = pd.DataFrame({"model": "m", "guidance": np.nan, "class_label": rng.choice(list("abcd"), n),
                       "originality": orig, "correct": correct})
    curve = gen.generalization_curve(df)
    assert np.corrcoef(curve["originality"], curve["recognizability"])[0, 1] < -0.95
    pts = gen.diversity_recognizability(df, rng.normal(size=(n, 3)))
    assert len(pts) == 4 and pts["diversity"].between(0.8, 1.2).all()
