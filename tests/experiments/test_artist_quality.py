"""artist.quality reports FD-infinity (../shared/DESIGN.md) beside FD and KID at equal N."""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.artist import quality


def test_fd_infinity_present_finite_and_ordered() -> None:
    rng = np.random.default_rng(0)
    n, d = 60, 4
    human = rng.normal(size=(n, d))
    near = rng.normal(size=(n, d)) + 0.2  # almost the human distribution
    far = rng.normal(size=(n, d)) + 3.0  # shifted by 3 SD in each of 4 dims: FD about 36
    feats = np.concatenate([human, near, far])
    items = pd.DataFrame({"model": ["human"] * n + ["cfgdm"] * n + ["cfgdm"] * n,
                          "guidance": [np.nan] * n + [0.0] * n + [2.0] * n})
    q = quality(items, feats, seed=0).set_index("guidance")
    assert {"fd", "fd_inf", "kid"} <= set(q.columns)
    assert np.isfinite(q["fd_inf"]).all()
    assert q.loc[2.0, "fd_inf"] > q.loc[0.0, "fd_inf"] + 20
    assert abs(q.loc[2.0, "fd_inf"] - 4 * 3.0**2) < 8  # FD of two unit Gaussians 3 SD apart in 4-d
    assert q.loc[0.0, "fd_inf"] < q.loc[0.0, "fd"]  # the intercept removes FD's small-N bias
