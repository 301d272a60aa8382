"""Checks a model map must pass before it is compared with people: does it find a region known
to decide the class, does it depend on the trained weights, and does it repeat over noise draws.

Maps are (n, H, W) non-negative floats on the image grid; masks (n, H, W) bool, True on the
known diagnostic region. Per-image scores are (n,) arrays; summaries add bootstrap 95% CIs over
images (analysis.stats).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.maps import average_ranks, rowwise_spearman
from analysis.stats import bootstrap_mean_ci

REGION_SCORES = ("mass_in_region", "pointing_game", "spearman_mask")
RANDOMISATION_LIMIT = 0.5  # a map that keeps rank correlation >= this with random weights fails


def _check(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(maps, np.float64)
    k = np.asarray(masks, bool)
    if m.ndim != 3 or m.shape != k.shape:
        raise ValueError(f"maps and masks: expected two (n, H, W) arrays of one shape, got {m.shape} and {k.shape}")
    if np.any(m < 0):
        raise ValueError("maps: attribution maps must be non-negative")
    return m.reshape(len(m), -1), k.reshape(len(k), -1)


def mass_in_region(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each map's total mass inside its mask, (n,) in [0, 1]; NaN for an all-zero map.
    A map that ignores the image scores the mask's area share on average (chance)."""
    m, k = _check(maps, masks)
    total = m.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (m * k).sum(1) / total, np.nan)


def pointing_game(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """1.0 where the map's maximum lies in the mask, else 0.0 (Zhang et al. 2018); with tied
    maxima each counts in proportion, so a constant map scores the mask's area share; (n,)."""
    m, k = _check(maps, masks)
    top = m == m.max(1, keepdims=True)
    return (top & k).sum(1) / top.sum(1)


def spearman_mask(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Spearman correlation of each map with its 0/1 mask (ranks, ties averaged), (n,);
    0 for a map unrelated to the region, NaN for a constant map."""
    m, k = _check(maps, masks)
    return rowwise_spearman(m, k.astype(np.float64))


def region_scores(maps: np.ndarray, masks: np.ndarray) -> pd.DataFrame:
    """The three known-truth scores per image, and the chance level of the first two (the mask's
    area share)."""
    return pd.DataFrame({
        "mass_in_region": mass_in_region(maps, masks),
        "pointing_game": pointing_game(maps, masks),
        "spearman_mask": spearman_mask(maps, masks),
        "chance": np.asarray(masks, bool).reshape(len(masks), -1).mean(1),
    })


def summarise_region_scores(per_image: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Means with bootstrap 95% CIs over images of `region_scores`, the chance level, and
    `passes_region`: every score's CI lies above chance (mass, pointing) or above 0 (Spearman)."""
    out: dict[str, float] = {"n_images": int(len(per_image)), "chance": float(per_image["chance"].mean())}
    for i, name in enumerate(REGION_SCORES):
        mean, lo, hi = bootstrap_mean_ci(per_image[name].to_numpy(), n_boot, seed + i)
        out[name], out[f"{name}_lo"], out[f"{name}_hi"] = mean, lo, hi
    out["passes_region"] = bool(
        out["mass_in_region_lo"] > out["chance"]
        and out["pointing_game_lo"] > out["chance"]
        and out["spearman_mask_lo"] > 0
    )
    return out


def randomisation_check(trained: np.ndarray, randomised: np.ndarray, n_boot: int = 1000, seed: int = 0
                        ) -> dict[str, float]:
    """Model-parameter randomisation test (Adebayo et al. 2018): Spearman between each image's
    map from the trained model and from the same model with random weights. A map that still
    looks the same reads the image, not what the model learned. `passes_randomisation` when the
    CI's upper end is below RANDOMISATION_LIMIT."""
    a, b = np.asarray(trained, np.float64), np.asarray(randomised, np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"trained and randomised: expected two (n, H, W) arrays of one shape, got {a.shape}, {b.shape}")
    rho = rowwise_spearman(a.reshape(len(a), -1), b.reshape(len(b), -1))
    mean, lo, hi = bootstrap_mean_ci(rho, n_boot, seed)
    return {"randomisation_spearman": mean, "randomisation_spearman_lo": lo,
            "randomisation_spearman_hi": hi,
            "passes_randomisation": bool(np.isfinite(hi) and hi < RANDOMISATION_LIMIT)}


def split_half_reliability(maps_a: np.ndarray, maps_b: np.ndarray) -> np.ndarray:
    """Spearman (n,) between two maps of each image made from independent noise draws: the
    reliability of a map with that many draws (1 = the draws do not matter, 0 = pure noise)."""
    a, b = np.asarray(maps_a, np.float64), np.asarray(maps_b, np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"maps_a and maps_b: expected two (n, H, W) arrays of one shape, got {a.shape}, {b.shape}")
    return rowwise_spearman(a.reshape(len(a), -1), b.reshape(len(b), -1))


def between_image_similarity(maps: np.ndarray) -> float:
    """Mean Spearman between the maps of different images (all pairs): high when a map has the
    same layout whatever the image (e.g. a centre bias), about 0 when it follows each image."""
    m = np.asarray(maps, np.float64)
    if m.ndim != 3 or len(m) < 2:
        raise ValueError("maps: need (n, H, W) with n >= 2")
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(average_ranks(m))
    iu = np.triu_indices(len(m), 1)
    return float(np.nanmean(c[iu]))


def known_map_alignment(model_maps: dict[str, np.ndarray], known: np.ndarray, n_boot: int = 1000,
                        seed: int = 0) -> pd.DataFrame:
    """How well each method's maps (n, H, W) match a known importance map `known` (n, H, W) of
    the same images (e.g. the map simulated clickers click from): mean Spearman over images with
    its bootstrap 95% CI, and `indistinguishable_from_zero` when the CI covers 0.
    Columns: method, n_images, spearman, spearman_lo, spearman_hi, indistinguishable_from_zero."""
    rows = []
    for i, (method, maps) in enumerate(model_maps.items()):
        m = np.asarray(maps, np.float64)
        if m.shape != np.shape(known):
            raise ValueError(f"model_maps[{method!r}]: shape {m.shape} differs from known {np.shape(known)}")
        rho = rowwise_spearman(m.reshape(len(m), -1), np.asarray(known, np.float64).reshape(len(m), -1))
        mean, lo, hi = bootstrap_mean_ci(rho, n_boot, seed + i)
        rows.append({"method": method, "n_images": int(np.isfinite(rho).sum()), "spearman": mean,
                     "spearman_lo": lo, "spearman_hi": hi,
                     "indistinguishable_from_zero": bool(not np.isfinite(lo) or lo <= 0 <= hi)})
    return pd.DataFrame(rows, columns=["method", "n_images", "spearman", "spearman_lo", "spearman_hi",
                                       "indistinguishable_from_zero"])
