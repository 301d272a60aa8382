"""Alignment of human and model importance maps, per image, normalised by the noise ceiling.

All metrics take human and model maps (n, H, W) on the same grid and return (n,) arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.maps import resize_map, rowwise_pearson, rowwise_spearman
from analysis.stats import bootstrap_mean_ci

__all__ = ["rowwise_spearman", "rowwise_pearson", "top_mask", "dice_iou", "auc", "nss", "cc",
           "alignment_metrics", "align_methods", "summarise_alignment"]


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
    ceiling: float,
    by: list[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean of each metric per group with bootstrap 95% CIs over images.

    `alignment` = mean Spearman / `ceiling` (Harmonization), with its CI from the same
    resamples. by: grouping columns (default ["method"]).
    """
    by = by or ["method"]
    rows = []
    metrics = ["spearman", "dice", "iou", "auc", "nss", "cc"]
    for key, g in per_image.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key, strict=True))
        row["n_images"] = len(g)
        for i, m in enumerate(metrics):
            mean, lo, hi = bootstrap_mean_ci(g[m].to_numpy(), n_boot, seed + i)
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean, lo, hi
        row["ceiling"] = ceiling
        row["alignment"] = row["spearman"] / ceiling
        row["alignment_lo"] = row["spearman_lo"] / ceiling
        row["alignment_hi"] = row["spearman_hi"] / ceiling
        rows.append(row)
    return pd.DataFrame(rows)
