"""Map alignment metrics against scikit-learn, scipy and hand-worked examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from analysis import alignment


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    human = rng.random((4, 10, 10))
    model = human + rng.normal(0, 0.3, human.shape)
    model[1] = np.round(model[1] * 3)  # ties in the model map
    return human, np.clip(model, 0, None)


def test_auc_matches_sklearn(pair):
    human, model = pair
    got = alignment.auc(human, model, 0.1)
    pos = alignment.top_mask(human, 0.1)
    want = [roc_auc_score(p, m.ravel()) for p, m in zip(pos, model, strict=True)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_spearman_and_cc_match_scipy(pair):
    human, model = pair
    df = alignment.alignment_metrics(human, model)
    for i in range(4):
        assert df.loc[i, "spearman"] == pytest.approx(
            stats.spearmanr(human[i].ravel(), model[i].ravel()).statistic, abs=1e-12)
        assert df.loc[i, "cc"] == pytest.approx(
            stats.pearsonr(human[i].ravel(), model[i].ravel()).statistic, abs=1e-12)


def test_dice_iou_by_hand():
    human = np.zeros((1, 2, 5))
    model = np.zeros((1, 2, 5))
    human[0, 0, :] = [9, 8, 0, 0, 0]  # top 20%: pixels 0, 1
    model[0, 0, :] = [9, 0, 8, 0, 0]  # top 20%: pixels 0, 2
    dice, iou = alignment.dice_iou(human, model, 0.2)
    assert dice[0] == pytest.approx(0.5) and iou[0] == pytest.approx(1 / 3)
    assert alignment.top_mask(human, 0.2).sum() == 2


def test_nss_by_hand_for_a_binary_human_map():
    model = np.array([[[1.0, 2.0], [3.0, 6.0]]])
    human = np.array([[[0.0, 0.0], [1.0, 1.0]]])
    z = (model.ravel() - 3.0) / np.std(model.ravel())
    assert alignment.nss(human, model)[0] == pytest.approx((z[2] + z[3]) / 2, abs=1e-12)


def test_align_methods_resizes_model_maps_and_summary_normalises_by_ceiling():
    rng = np.random.default_rng(1)
    human = rng.random((3, 4, 4))
    ids = np.array(["a", "b", "c"])
    fine = {s: np.kron(human[i], np.ones((2, 2))) for i, s in enumerate(ids)}  # 8x8 copies
    per = alignment.align_methods(human, ids, {"copy": fine, "part": {"a": fine["a"]}})
    assert len(per) == 4
    assert np.allclose(per.loc[per["method"] == "copy", "spearman"], 1.0)
    per["spearman"] = [0.2, 0.4, 0.6, 0.5]
    summ = alignment.summarise_alignment(per, ceiling=0.8, n_boot=500)
    row = summ.set_index("method").loc["copy"]
    assert row["spearman"] == pytest.approx(0.4) and row["alignment"] == pytest.approx(0.5)
    assert row["alignment_lo"] <= row["alignment"] <= row["alignment_hi"]
    assert row["spearman_lo"] >= 0.2 - 1e-12 and row["spearman_hi"] <= 0.6 + 1e-12
    assert isinstance(summ, pd.DataFrame) and row["n_images"] == 3
