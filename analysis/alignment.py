"""Alignment of human and model importance maps, per image, normalised by the noise ceiling.

All metrics take human and model maps (n, H, W) on the same grid and return (n,) arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.maps import (
    NoiseCeiling,
    resize_map,
    rowwise_pearson,
    rowwise_spearman,
    spearman_brown,
)
from analysis.stats import bootstrap_mean_ci, percentile_ci, resample_weights

__all__ = ["rowwise_spearman", "rowwise_pearson", "top_mask", "dice_iou", "auc", "nss", "cc",
           "alignment_metrics", "align_methods", "summarise_alignment", "normalised_alignment"]


def _flat(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x.reshape(len(x), -1)


def top_mask(maps: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Boolean (n, H*W): the ceil(fraction * H*W) highest pixels of each map (ties by order)."""
    flat = _flat(maps)
    k = max(1, int(np.ceil(fraction * flat.shape[1])))
    idx = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    mask = np.zeros(flat.shape, bool)
    np.put_along_axis(mask, idx, True, axis=1)
    return mask


def dice_iou(human: np.ndarray, model: np.ndarray, fraction: float = 0.1
             ) -> tuple[np.ndarray, np.ndarray]:
    """Dice and IoU (n,) of the top-`fraction` pixel sets of the two maps."""
    a, b = top_mask(human, fraction), top_mask(model, fraction)
    inter = (a & b).sum(axis=1)
    union = (a | b).sum(axis=1)
    return 2 * inter / (a.sum(axis=1) + b.sum(axis=1)), inter / union


def auc(human: np.ndarray, model: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """ROC AUC (n,) of the model map as a score for the human map's top-`fraction` pixels.

    Mann-Whitney with average ranks, equal to sklearn.metrics.roc_auc_score with ties.
    """
    pos = top_mask(human, fraction)
    r = stats.rankdata(_flat(model), axis=1)
    n_pos = pos.sum(axis=1)
    n_neg = pos.shape[1] - n_pos
    return ((r * pos).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def nss(human: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Normalised scanpath saliency (n,): mean of the z-scored model map weighted by the human map.

    For a binary human map this is the usual NSS (mean z at the clicked pixels).
    Model map z-scored with the population SD; a constant model map gives NaN.
    """
    h, m = _flat(human), _flat(model)
    sd = m.std(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (m - m.mean(axis=1, keepdims=True)) / sd
        return (z * h).sum(axis=1) / h.sum(axis=1)


def cc(human: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Pearson correlation coefficient (n,) between the maps."""
    return rowwise_pearson(human, model)


def alignment_metrics(human: np.ndarray, model: np.ndarray, fraction: float = 0.1
                      ) -> pd.DataFrame:
    """All per-image metrics: spearman, dice, iou, auc, nss, cc; (n rows)."""
    dice, iou = dice_iou(human, model, fraction)
    return pd.DataFrame({
        "spearman": rowwise_spearman(human, model), "dice": dice, "iou": iou,
        "auc": auc(human, model, fraction), "nss": nss(human, model), "cc": cc(human, model),
    })


def align_methods(
    human_maps: np.ndarray,
    stimulus_ids: np.ndarray,
    model_maps: dict[str, dict[str, np.ndarray]],
    fraction: float = 0.1,
) -> pd.DataFrame:
    """Per-image metrics for every method on the images both sides have.

    human_maps: (n, H, W) blurred human maps for `stimulus_ids`; model_maps:
    {method: {stimulus_id: (h, w)}} unblurred, resized to (H, W) when the grids differ.
    Returns one row per (method, stimulus_id).
    """
    pos = {sid: i for i, sid in enumerate(stimulus_ids)}
    shape = human_maps.shape[1:]
    frames = []
    for method, maps in model_maps.items():
        ids = [sid for sid in maps if sid in pos]
        if not ids:
            continue
        h = human_maps[[pos[s] for s in ids]]
        m = np.stack([resize_map(maps[s], shape) for s in ids])
        df = alignment_metrics(h, m, fraction)
        df.insert(0, "stimulus_id", ids)
        df.insert(0, "method", method)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["method", "stimulus_id", "spearman", "dice", "iou", "auc",
                                     "nss", "cc"])
    return pd.concat(frames, ignore_index=True)


def summarise_alignment(
    per_image: pd.DataFrame,
    ceiling: NoiseCeiling | pd.Series,
    by: list[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean of each metric per group with bootstrap 95% CIs over images, and the alignment
    normalised by the human maps' noise ceiling.

    per_image: rows of `align_methods`; ceiling: the split-half ceiling per image, a
    NoiseCeiling or a Series of per-image ceilings indexed by stimulus_id (NaN: no ceiling).
    by: grouping columns (default ["method"]). Each group's ceiling is the mean per-image
    ceiling over the group's own images, so that the model and the humans are scored on the
    same images. Columns besides the metrics and their _lo/_hi:

    - ceiling: mean split-half Spearman; ceiling_sb: stepped up to the full sample,
      2 r / (1 + r) (Spearman-Brown), the expected Spearman between two independent groups of
      as many participants as the human maps have;
    - alignment_ceiling_normalised = mean Spearman / ceiling, the Harmonization benchmark's
      score. It can exceed 1: the ceiling correlates two half-samples, while the model is
      compared with the map of the full sample, which is less noisy;
    - alignment_sb_corrected = mean Spearman / sqrt(ceiling_sb). A map with reliability
      ceiling_sb correlates sqrt(ceiling_sb) with the map infinitely many participants would
      give (the attenuation formula of classical test theory), so a model that reproduces that
      population map scores about 1, whatever the number of participants;
    - alignment: the same as alignment_ceiling_normalised (the name earlier readers use);
    - n_images_ceiling: the images with a ceiling, on which the normalised scores are computed.

    The CIs of the ceilings and normalised scores come from one set of image resamples, each
    recomputing the mean Spearman and the ceiling on the same resampled images, so they carry
    the ceiling's own uncertainty.
    """
    by = by or ["method"]
    if isinstance(ceiling, NoiseCeiling):
        ceiling = pd.Series(ceiling.per_image_ceiling, index=ceiling.stimulus_ids)
    rows = []
    metrics = ["spearman", "dice", "iou", "auc", "nss", "cc"]
    for key, g in per_image.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key, strict=True))
        row["n_images"] = len(g)
        for i, m in enumerate(metrics):
            mean, lo, hi = bootstrap_mean_ci(g[m].to_numpy(), n_boot, seed + i)
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean, lo, hi
        row.update(normalised_alignment(
            g["spearman"].to_numpy(), ceiling.reindex(g["stimulus_id"]).to_numpy(np.float64),
            n_boot, seed))
        rows.append(row)
    return pd.DataFrame(rows)


def normalised_alignment(spearman: np.ndarray, ceiling: np.ndarray, n_boot: int = 1000,
                         seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Ceiling-normalised alignment scores and their bootstrap CIs over images.

    spearman, ceiling: (n_images,) model-human Spearman and split-half ceiling per image;
    images where either is NaN are left out. Every resample draws images with replacement and
    recomputes both means on them (one (n_boot, n) weight matrix). Returns ceiling,
    ceiling_sb, alignment_ceiling_normalised, alignment_sb_corrected (see
    `summarise_alignment`), alignment, each with _lo/_hi, and n_images_ceiling.
    """
    ok = np.isfinite(spearman) & np.isfinite(ceiling)
    rho, ceil = np.asarray(spearman, np.float64)[ok], np.asarray(ceiling, np.float64)[ok]
    names = ("ceiling", "ceiling_sb", "alignment_ceiling_normalised", "alignment_sb_corrected")
    out: dict[str, float] = {"n_images_ceiling": int(ok.sum())}
    if not ok.any():
        for name in (*names, "alignment"):
            out[name] = out[f"{name}_lo"] = out[f"{name}_hi"] = np.nan
        return out
    w = np.vstack([np.ones(len(rho)), resample_weights(len(rho), n_boot,
                                                       np.random.default_rng(seed))])
    mean_rho, mean_ceil = w @ rho / len(rho), w @ ceil / len(rho)  # row 0: the data
    sb = spearman_brown(mean_ceil)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (mean_ceil, sb, mean_rho / mean_ceil, mean_rho / np.sqrt(sb))
    for name, v in zip(names, values, strict=True):
        lo, hi = percentile_ci(v[1:], level)
        out[name], out[f"{name}_lo"], out[f"{name}_hi"] = float(v[0]), float(lo), float(hi)
    for suffix in ("", "_lo", "_hi"):
        out[f"alignment{suffix}"] = out[f"alignment_ceiling_normalised{suffix}"]
    return out
