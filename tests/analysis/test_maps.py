"""Click maps, blur and the split-half ceiling: reference and recovery tests."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, stats

from analysis import maps, synthetic_exports


def _tables(rng, n_img=4, n_part=6, k=5, size=8):
    truth = synthetic_exports.blob_maps(n_img, size, rng)
    ids = [f"s{i}" for i in range(n_img)]
    return synthetic_exports.clickme_export(truth, ids, n_part, k, rng), truth, ids


def test_disc_diameter_scales_with_image_size():
    assert maps.disc_diameter(256) == 21
    assert maps.disc_diameter(512) == 43  # 42 rounded up to odd
    assert maps.disc_diameter(8) == 1
    k = maps.disc_kernel(5)
    assert k.sum() == pytest.approx(1.0)
    # radius 2: x^2 + y^2 <= 4 holds for 13 offsets (1 + 4 + 4 + 4)
    assert (k > 0).sum() == 13


def test_disc_blur_equals_two_direct_convolutions():
    rng = np.random.default_rng(0)
    m = rng.random((3, 40, 40))
    k = maps.disc_kernel(7)
    want = np.stack([ndimage.convolve(ndimage.convolve(x, k, mode="constant"), k,
                                      mode="constant") for x in m])
    got = maps.blur_maps(m, "disc", diameter=7)
    np.testing.assert_allclose(got, want, atol=1e-10)


def test_gaussian_blur_option_matches_scipy():
    m = np.zeros((1, 21, 21))
    m[0, 10, 10] = 1
    got = maps.blur_maps(m, "gaussian", sigma=2.0)
    np.testing.assert_allclose(got[0], ndimage.gaussian_filter(m[0], 2.0, mode="constant"))
    with pytest.raises(ValueError, match="blur method"):
        maps.blur_maps(m, "box")


def test_mean_maps_equal_a_naive_loop_and_drop_thin_trials_and_images():
    rng = np.random.default_rng(1)
    (trials, clicks), _, ids = _tables(rng, n_img=3, n_part=5, k=4)
    # trial of c0 on image 0 keeps only one click; image 2 keeps only 1 participant
    drop = (clicks["participant"] == "c0") & (clicks["trial_index"] == 0) & (clicks["order"] > 0)
    thin = (clicks["trial_index"] == 2) & (clicks["participant"] != "c1")
    clicks = clicks.loc[~drop & ~thin].reset_index(drop=True)
    idx = maps.click_index(trials, clicks, (8, 8), min_clicks=2, min_subjects=2)
    got = maps.mean_maps(idx)
    assert list(idx.stimulus_ids) == ["s0", "s1"]
    for i, sid in enumerate(["s0", "s1"]):
        want, n = np.zeros((8, 8)), 0
        for p in trials.loc[trials["stimulus_id"] == sid, "participant"]:
            c = clicks[(clicks["participant"] == p) & (clicks["stimulus_id"] == sid)]
            if len(c) < 2:
                continue
            one = np.zeros((8, 8))
            for x, y in zip(c["x"], c["y"], strict=True):
                one[min(int(y * 8), 7), min(int(x * 8), 7)] = 1  # binary: repeats count once
            want += one
            n += 1
        np.testing.assert_allclose(got[i], want / n)
    assert idx.trial_image.tolist().count(0) == 4  # c0's thin trial on s0 dropped


def test_rowwise_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 4, (5, 30)).astype(float)
    b = rng.random((5, 30))
    got = maps.rowwise_spearman(a, b)
    want = [stats.spearmanr(x, y).statistic for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert np.isnan(maps.rowwise_spearman(np.ones((1, 5)), b[:1, :5]))[0]


def test_clicks_from_a_known_map_give_it_back():
    rng = np.random.default_rng(3)
    size, ids = 32, [f"s{i}" for i in range(5)]
    truth = synthetic_exports.blob_maps(len(ids), size, rng)
    trials, clicks = synthetic_exports.clickme_export(truth, ids, 60, 40, rng)
    im = maps.image_maps(trials, clicks, (size, size), blur="gaussian", sigma=1.5)
    assert list(im.stimulus_ids) == ids
    rho = maps.rowwise_spearman(im.maps, truth)
    assert rho.min() > 0.9
    # a map is not recovered from another image's clicks
    assert maps.rowwise_spearman(im.maps, np.roll(truth, 1, axis=0)).mean() < 0.8


def test_split_half_ceiling_above_floor_and_null_for_uniform_clicks():
    rng = np.random.default_rng(4)
    size, ids = 32, [f"s{i}" for i in range(6)]
    truth = synthetic_exports.blob_maps(len(ids), size, rng)
    trials, clicks = synthetic_exports.clickme_export(truth, ids, 20, 30, rng)
    idx = maps.click_index(trials, clicks, (size, size))
    nc = maps.split_half_ceiling(idx, n_repeats=10, seed=0)
    assert nc.ceiling > 0.7 and nc.floor < nc.ceiling - 0.15
    assert nc.per_image_ceiling.shape == (6,)
    flat = np.ones((len(ids), size, size))
    trials, clicks = synthetic_exports.clickme_export(flat, ids, 20, 30, rng)
    nc0 = maps.split_half_ceiling(maps.click_index(trials, clicks, (size, size)), 10, 0)
    assert abs(nc0.ceiling) < 0.15 and abs(nc0.floor) < 0.15


def test_ceiling_needs_two_trials_per_image():
    rng = np.random.default_rng(5)
    (trials, clicks), _, _ = _tables(rng, n_img=2, n_part=1)
    with pytest.raises(ValueError, match="at least 2 trials"):
        maps.split_half_ceiling(maps.click_index(trials, clicks, (8, 8)), 2)


def test_ceiling_leaves_out_images_with_one_trial_and_equals_the_ceiling_of_the_others():
    rng = np.random.default_rng(6)
    (trials, clicks), _, _ = _tables(rng, n_img=4, n_part=6, k=6)
    one = (clicks["trial_index"] == 1) & (clicks["participant"] != "c3")  # s1: one participant
    idx = maps.click_index(trials, clicks.loc[~one], (8, 8))
    assert list(np.bincount(idx.trial_image)) == [6, 1, 6, 6]
    nc = maps.split_half_ceiling(idx, 5, seed=3)
    assert np.isnan(nc.per_image_ceiling[1]) and np.isnan(nc.per_image_floor[1])
    keep = np.array([True, False, True, True])
    alone = maps.split_half_ceiling(maps.subset_images(idx, keep), 5, seed=3)
    np.testing.assert_allclose(nc.per_image_ceiling[keep], alone.per_image_ceiling)
    assert nc.ceiling == pytest.approx(np.nanmean(nc.per_image_ceiling))
    three = maps.click_index(trials.loc[trials["trial_index"] != 1],
                             clicks.loc[clicks["trial_index"] != 1], (8, 8))
    np.testing.assert_array_equal(maps.mean_maps(maps.subset_images(idx, keep)),
                                  maps.mean_maps(three))


def test_spearman_brown_by_hand():
    assert maps.spearman_brown(0.5) == pytest.approx(2 / 3)
    assert maps.spearman_brown(0.6, factor=3) == pytest.approx(1.8 / 2.2)
    assert maps.spearman_brown(0.0) == 0.0 and np.isnan(maps.spearman_brown(-1.0))


def test_resize_map_block_mean_and_bilinear():
    m = np.arange(16.0).reshape(4, 4)
    np.testing.assert_allclose(maps.resize_map(m, (2, 2)), [[2.5, 4.5], [10.5, 12.5]])
    up = maps.resize_map(m, (7, 7))
    assert up.shape == (7, 7) and up[0, 0] == pytest.approx(0) and up[-1, -1] == pytest.approx(15)


def test_average_ranks_equal_scipy_rankdata():
    rng = np.random.default_rng(6)
    x = rng.integers(0, 5, (7, 3, 11)).astype(float)
    np.testing.assert_array_equal(maps.average_ranks(x),
                                  stats.rankdata(x.reshape(7, -1), axis=1))


def test_large_disc_uses_fft_and_keeps_exact_zeros():
    m = np.zeros((2, 64, 64))
    m[0, 5, 5] = 1.0
    got = maps.blur_maps(m, "disc", diameter=15)
    k = maps.disc_kernel(15)
    want = ndimage.convolve(ndimage.convolve(m[0], k, mode="constant"), k, mode="constant")
    np.testing.assert_allclose(got[0], want, atol=1e-12)
    assert (got[0][want == 0] == 0).all() and (got[1] == 0).all()


def test_ceiling_shortcut_equals_blurring_each_half():
    rng = np.random.default_rng(7)
    size, ids = 16, [f"s{i}" for i in range(3)]
    trials, clicks = synthetic_exports.clickme_export(synthetic_exports.blob_maps(3, size, rng), ids, 6, 10, rng)
    idx = maps.click_index(trials, clicks, (size, size))
    nc = maps.split_half_ceiling(idx, n_repeats=1, seed=11, blur="disc", diameter=5)
    # the same split by hand: blur each half's mean map separately
    r = np.random.default_rng(11)
    n_tr = len(idx.trial_image)
    order = np.lexsort((r.random(n_tr), idx.trial_image))
    per = np.bincount(idx.trial_image)
    starts = np.concatenate([[0], np.cumsum(per)[:-1]])
    pos = np.empty(n_tr, np.int64)
    pos[order] = np.arange(n_tr) - starts[idx.trial_image[order]]
    first = (pos < per[idx.trial_image] // 2).astype(float)
    a = maps.blur_maps(maps.mean_maps(idx, first), "disc", diameter=5)
    b = maps.blur_maps(maps.mean_maps(idx, 1 - first), "disc", diameter=5)

    def q(m):  # 9 significant digits of the map's maximum: exact-arithmetic ties stay ties
        return np.round(m / m.max(axis=(1, 2), keepdims=True) * 1e9)

    want = [stats.spearmanr(x.ravel(), y.ravel()).statistic
            for x, y in zip(q(a), q(b), strict=True)]
    np.testing.assert_allclose(nc.per_image_ceiling, want, atol=1e-9)
