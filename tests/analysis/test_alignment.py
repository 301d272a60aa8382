"""Map alignment metrics against scikit-learn, scipy and hand-worked examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from analysis import alignment, maps, synthetic_exports


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
    ceiling = pd.Series([0.7, 0.8, 0.9], index=ids)
    summ = alignment.summarise_alignment(per, ceiling, n_boot=500)
    row = summ.set_index("method").loc["copy"]
    assert row["spearman"] == pytest.approx(0.4) and row["ceiling"] == pytest.approx(0.8)
    assert row["alignment_ceiling_normalised"] == pytest.approx(0.5)
    assert row["alignment"] == row["alignment_ceiling_normalised"]
    assert row["ceiling_sb"] == pytest.approx(1.6 / 1.8)
    assert row["alignment_sb_corrected"] == pytest.approx(0.4 / np.sqrt(1.6 / 1.8))
    for name in ("alignment", "alignment_sb_corrected", "ceiling"):
        assert row[f"{name}_lo"] <= row[name] <= row[f"{name}_hi"]
    assert row["spearman_lo"] >= 0.2 - 1e-12 and row["spearman_hi"] <= 0.6 + 1e-12
    assert isinstance(summ, pd.DataFrame) and row["n_images"] == 3
    # a method on image a only: its ceiling is a's, not the mean over all images
    part = summ.set_index("method").loc["part"]
    assert part["ceiling"] == pytest.approx(0.7)
    assert part["alignment"] == pytest.approx(0.5 / 0.7)
    # an image without a ceiling (one participant) is left out of the normalised scores only
    summ = alignment.summarise_alignment(per, pd.Series([0.7, np.nan, 0.9], index=ids), n_boot=50)
    row = summ.set_index("method").loc["copy"]
    assert row["n_images"] == 3 and row["n_images_ceiling"] == 2
    assert row["spearman"] == pytest.approx(0.4)
    assert row["alignment"] == pytest.approx(0.4 / 0.8)


def test_normalised_alignment_bootstrap_equals_a_loop_over_resamples():
    rng = np.random.default_rng(4)
    rho, ceil = rng.uniform(0.2, 0.7, 25), rng.uniform(0.4, 0.9, 25)
    got = alignment.normalised_alignment(rho, ceil, n_boot=300, seed=9)
    draws = np.random.default_rng(9).integers(0, 25, (300, 25))  # resample_weights' draws
    ratio = [rho[d].mean() / ceil[d].mean() for d in draws]
    sb = [rho[d].mean() / np.sqrt(2 * ceil[d].mean() / (1 + ceil[d].mean())) for d in draws]
    assert got["alignment_ceiling_normalised"] == pytest.approx(rho.mean() / ceil.mean())
    np.testing.assert_allclose([got["alignment_lo"], got["alignment_hi"]],
                               np.quantile(ratio, [0.025, 0.975]), atol=1e-12)
    np.testing.assert_allclose([got["alignment_sb_corrected_lo"],
                                got["alignment_sb_corrected_hi"]],
                               np.quantile(sb, [0.025, 0.975]), atol=1e-12)


def _human_maps(truth, n_participants, clicks_per_trial, rng, n_repeats=10):
    """Blurred human maps of simulated clickers on `truth`, their per-image split-half
    ceiling, and the population map: the blurred map infinitely many clickers would give."""
    n_img, size, _ = truth.shape
    image, part, x, y = synthetic_exports.sample_clicks(truth, n_participants, clicks_per_trial, rng)
    trials = pd.DataFrame({"participant": np.tile(np.arange(n_participants), n_img),
                           "trial_index": np.repeat(np.arange(n_img), n_participants)})
    trials["stimulus_id"] = trials["trial_index"]
    clicks = pd.DataFrame({"participant": part, "trial_index": image, "x": x, "y": y})
    idx = maps.click_index(trials, clicks, (size, size))
    human = maps.blur_maps(maps.mean_maps(idx), "disc")
    nc = maps.split_half_ceiling(idx, n_repeats, seed=0)
    p = truth / truth.sum(axis=(1, 2), keepdims=True)
    # a trial paints a pixel with probability 1 - (1 - p)^k; the mean map's expectation, blurred
    population = maps.blur_maps(1 - (1 - p) ** clicks_per_trial, "disc")
    return human, nc, population


@pytest.mark.parametrize("n_participants", [5, 10, 20, 40])
def test_a_perfect_model_scores_one_after_the_spearman_brown_correction(n_participants):
    # the population map is the perfect model; the split-half ceiling alone puts it above 1
    rng = np.random.default_rng(n_participants)
    truth = synthetic_exports.blob_maps(40, 32, rng)
    human, nc, population = _human_maps(truth, n_participants, 15, rng)
    per = pd.DataFrame({"method": "perfect", "stimulus_id": nc.stimulus_ids,
                        "spearman": maps.rowwise_spearman(human, population)})
    for m in ("dice", "iou", "auc", "nss", "cc"):
        per[m] = 0.0
    row = alignment.summarise_alignment(per, nc, n_boot=200).iloc[0]
    assert row["alignment_ceiling_normalised"] > 1.1
    assert abs(row["alignment_sb_corrected"] - 1) < 0.1, row["alignment_sb_corrected"]


def test_alignment_ci_covers_the_population_score_over_image_sets():
    # 250 studies of 30 images, each image with its own clickers; the truth is the score on
    # all 7500 images (its Monte Carlo error is ~1/16 of one study's standard error)
    rng = np.random.default_rng(21)
    n_sets, per_set = 250, 30
    truth = synthetic_exports.blob_maps(n_sets * per_set, 16, rng)
    human, nc, _ = _human_maps(truth, 10, 15, rng, n_repeats=4)
    model = truth + rng.uniform(0, 1, (len(truth), 1, 1)) * rng.random(truth.shape)
    rho = maps.rowwise_spearman(human, model)
    ceil = nc.per_image_ceiling
    true_raw = rho.mean() / ceil.mean()
    true_sb = rho.mean() / np.sqrt(maps.spearman_brown(ceil.mean()))
    ids = nc.stimulus_ids.astype(np.int64)  # the sets: consecutive images
    per = pd.DataFrame({"method": "m", "set": ids // per_set, "stimulus_id": ids,
                        "spearman": rho})
    for m in ("dice", "iou", "auc", "nss", "cc"):
        per[m] = 0.0
    summ = alignment.summarise_alignment(per, nc, by=["method", "set"], n_boot=400)
    assert len(summ) == n_sets
    raw = (summ["alignment_lo"] <= true_raw) & (true_raw <= summ["alignment_hi"])
    sb = ((summ["alignment_sb_corrected_lo"] <= true_sb)
          & (true_sb <= summ["alignment_sb_corrected_hi"]))
    assert 0.88 <= raw.mean() <= 0.99, raw.mean()
    assert 0.88 <= sb.mean() <= 0.99, sb.mean()
