"""Known-truth scores and reliability of model maps, against hand computations and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis import map_checks as C


def _mask(n: int = 1, size: int = 4) -> np.ndarray:
    m = np.zeros((n, size, size), bool)
    m[:, :2, :2] = True  # a quarter of the image
    return m


def test_mass_in_region_by_hand():
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 0], maps[0, 3, 3] = 3.0, 1.0  # 3 of 4 units inside
    maps[1] = 0.0  # no mass: undefined
    got = C.mass_in_region(maps, _mask(2))
    assert got[0] == pytest.approx(0.75) and np.isnan(got[1])


def test_pointing_game_counts_ties_in_proportion():
    maps = np.zeros((3, 4, 4))
    maps[0, 1, 1] = 5.0  # maximum inside
    maps[1, 3, 3] = 5.0  # maximum outside
    # maps[2] constant: every pixel is a maximum, so it scores the area share
    np.testing.assert_allclose(C.pointing_game(maps, _mask(3)), [1.0, 0.0, 0.25])


def test_spearman_mask_and_split_half_match_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 6, 6)), rng.random((5, 6, 6))
    mask = rng.random((5, 6, 6)) < 0.3
    want = [stats.spearmanr(a[i].ravel(), mask[i].ravel())[0] for i in range(5)]
    np.testing.assert_allclose(C.spearman_mask(a, mask), want, atol=1e-12)
    want = [stats.spearmanr(a[i].ravel(), b[i].ravel())[0] for i in range(5)]
    np.testing.assert_allclose(C.split_half_reliability(a, b), want, atol=1e-12)


def test_between_image_similarity_is_the_mean_pairwise_spearman():
    rng = np.random.default_rng(1)
    maps = rng.random((4, 5, 5))
    pairs = [stats.spearmanr(maps[i].ravel(), maps[j].ravel())[0] for i in range(4) for j in range(i + 1, 4)]
    assert C.between_image_similarity(maps) == pytest.approx(np.mean(pairs), abs=1e-12)
    same = np.repeat(maps[:1], 3, axis=0)
    assert C.between_image_similarity(same) == pytest.approx(1.0)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="non-negative"):
        C.mass_in_region(-np.ones((1, 4, 4)), _mask())
    with pytest.raises(ValueError, match="masks"):
        C.pointing_game(np.ones((1, 4, 4)), _mask(1, 5))
    with pytest.raises(ValueError, match="randomised"):
        C.randomisation_check(np.ones((2, 4, 4)), np.ones((3, 4, 4)))


def test_region_verdict_on_known_truth():
    """A map with extra mass on the region passes; maps that ignore the image fail, and their
    mass CI covers the chance level about as often as a 95% CI should."""
    rng = np.random.default_rng(2)
    n, reps = 40, 200
    mask = _mask(n, 8)
    good = rng.random((n, 8, 8)) + 1.5 * mask
    assert C.summarise_region_scores(C.region_scores(good, mask), n_boot=300)["passes_region"]
    covered, passed = 0, 0
    for r in range(reps):
        null = rng.random((n, 8, 8))
        s = C.summarise_region_scores(C.region_scores(null, mask), n_boot=300, seed=r)
        covered += s["mass_in_region_lo"] <= s["chance"] <= s["mass_in_region_hi"]
        passed += s["passes_region"]
    assert 0.89 <= covered / reps <= 0.99
    assert passed / reps <= 0.03


def test_randomisation_check():
    rng = np.random.default_rng(3)
    trained = rng.random((30, 6, 6))
    same = C.randomisation_check(trained, trained * 2 + 0.01 * rng.random((30, 6, 6)))
    assert not same["passes_randomisation"] and same["randomisation_spearman"] > 0.9
    other = C.randomisation_check(trained, rng.random((30, 6, 6)))
    assert other["passes_randomisation"] and abs(other["randomisation_spearman"]) < 0.2


def test_known_map_alignment_flags_maps_unrelated_to_the_known_map():
    rng = np.random.default_rng(4)
    known = rng.random((25, 6, 6))
    out = C.known_map_alignment({"follows": known + 0.3 * rng.random((25, 6, 6)),
                                 "noise": rng.random((25, 6, 6))}, known, n_boot=400)
    follows, noise = out.set_index("method").loc["follows"], out.set_index("method").loc["noise"]
    assert follows["spearman"] > 0.8 and not follows["indistinguishable_from_zero"]
    assert noise["indistinguishable_from_zero"] and noise["spearman_lo"] < 0 < noise["spearman_hi"]
    want = np.mean([stats.spearmanr(known[i].ravel(), (known + 0)[i].ravel())[0] for i in range(25)])
    assert C.known_map_alignment({"same": known}, known)["spearman"].iloc[0] == pytest.approx(want)
    with pytest.raises(ValueError, match="model_maps"):
        C.known_map_alignment({"bad": known[:3]}, known)
