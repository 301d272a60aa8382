"""Human importance maps from ClickMe clicks: click maps, blur, per-image means, noise ceiling.

All per-click work is vectorised (np.unique/np.bincount); loops run only over repetitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage, signal

CLICKME_DISC_DIAMETER = 21  # px, at CLICKME_SIZE
CLICKME_SIZE = 256  # px
DIRECT_MAX_DIAMETER = 11  # px; larger discs are convolved by FFT


@dataclass
class ImageMaps:
    """Per-image human maps.

    maps: (n_images, H, W) float, mean over participants of binary trial maps, blurred;
    stimulus_ids: (n_images,) the images kept; n_subjects: (n_images,) trials (participants) used.
    """

    maps: np.ndarray
    stimulus_ids: np.ndarray
    n_subjects: np.ndarray


@dataclass
class ClickIndex:
    """Unique painted (trial, pixel) pairs of the kept trials, ready for bincount.

    trial: (m,) trial code; pixel: (m,) flat pixel index; trial_image: (n_trials,) image code;
    stimulus_ids: (n_images,); shape: (H, W).
    """

    trial: np.ndarray
    pixel: np.ndarray
    trial_image: np.ndarray
    stimulus_ids: np.ndarray
    shape: tuple[int, int]


def disc_diameter(size: int) -> int:
    """ClickMe's 21 px disc at 256 px scaled to an image `size` px wide (odd, at least 1)."""
    d = int(round(CLICKME_DISC_DIAMETER * size / CLICKME_SIZE))
    return max(1, d if d % 2 else d + 1)


def disc_kernel(diameter: int) -> np.ndarray:
    """A flat disc (diameter, diameter) float kernel summing to 1."""
    r = (diameter - 1) / 2
    yy, xx = np.mgrid[0:diameter, 0:diameter] - r
    k = (xx**2 + yy**2 <= r**2 + 1e-9).astype(np.float64)
    return k / k.sum()


def blur_maps(
    maps: np.ndarray, method: str = "disc", diameter: int | None = None, sigma: float | None = None
) -> np.ndarray:
    """Blur each (H, W) map of `maps` (..., H, W) the ClickMe way.

    disc: a flat disc (default diameter `disc_diameter(W)`) applied twice, zero padding; gaussian: a Gaussian of `sigma` px (default diameter/4);
    none: unchanged.
    """
    maps = np.asarray(maps, dtype=np.float64)
    w = maps.shape[-1]
    diameter = diameter or disc_diameter(w)
    if method == "none":
        return maps.copy()
    if method == "gaussian":
        s = sigma if sigma is not None else diameter / 4
        sig = (0,) * (maps.ndim - 2) + (s, s)
        return ndimage.gaussian_filter(maps, sigma=sig, mode="constant")
    if method != "disc":
        raise ValueError(f"blur method must be disc, gaussian or none, not {method!r}")
    if diameter == 1:
        return maps.copy()
    k = disc_kernel(diameter).reshape((1,) * (maps.ndim - 2) + (diameter, diameter))
    for _ in range(2):  # applied twice, each pass zero-padded as ClickMe's pipeline does
        if diameter <= DIRECT_MAX_DIAMETER:  # direct sums: exact zeros stay zero (ties)
            maps = ndimage.convolve(maps, k, mode="constant")
        else:
            maps = signal.fftconvolve(maps, k, mode="same", axes=(-2, -1))
            # FFT round-off leaves ~1e-17 where the map is zero; zero it so ties stay ties
            scale = np.abs(maps).max(axis=(-2, -1), keepdims=True)
            maps[np.abs(maps) <= 1e-12 * scale] = 0.0
    # values equal in exact arithmetic can differ by a few ulp after summing in another order;
    # rounding to 12 significant digits of the map's maximum makes them tie again (Spearman)
    scale = maps.max(axis=(-2, -1), keepdims=True)
    scale[scale == 0] = 1.0
    return np.round(maps / scale, 12) * scale


def click_index(
    trials: pd.DataFrame,
    clicks: pd.DataFrame,
    shape: tuple[int, int],
    min_clicks: int = 1,
    min_subjects: int = 1,
) -> ClickIndex:
    """Put clicks on the (H, W) grid and drop thin trials and images.

    trials: ClickMe trials (participant, trial_index, stimulus_id); clicks: §3 clicks.
    A trial with fewer than `min_clicks` points is dropped; then an image with fewer than
    `min_subjects` kept trials is dropped.
    """
    h, w = shape
    key_t, key_c = _trial_keys(trials, clicks)
    codes = pd.Index(pd.unique(key_t))
    t_code = codes.get_indexer(key_c)
    on_trial = t_code >= 0
    t_code = t_code[on_trial]
    n_points = np.bincount(t_code, minlength=len(codes))
    first = ~pd.Series(key_t).duplicated().to_numpy()
    stim = trials["stimulus_id"].to_numpy()[first]
    keep_t = n_points >= min_clicks
    img_of_trial, img_codes = pd.factorize(stim, sort=True)
    img_codes = np.asarray(img_codes, dtype=object)
    subjects = np.bincount(img_of_trial[keep_t], minlength=len(img_codes))
    keep_img = subjects >= max(min_subjects, 1)
    keep_t &= keep_img[img_of_trial]
    # renumber kept trials and images
    new_img = np.cumsum(keep_img) - 1
    new_trial = np.cumsum(keep_t) - 1
    x = clicks["x"].to_numpy()[on_trial]
    y = clicks["y"].to_numpy()[on_trial]
    col = np.minimum((x * w).astype(np.int64), w - 1)
    row = np.minimum((y * h).astype(np.int64), h - 1)
    sel = keep_t[t_code]
    pair = np.sort(new_trial[t_code[sel]] * (h * w) + (row * w + col)[sel])
    pair = pair[np.r_[True, pair[1:] != pair[:-1]]] if pair.size else pair  # painted once
    return ClickIndex(
        trial=pair // (h * w),
        pixel=pair % (h * w),
        trial_image=new_img[img_of_trial[keep_t]],
        stimulus_ids=img_codes[keep_img],
        shape=(h, w),
    )


def _trial_keys(trials: pd.DataFrame, clicks: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """int64 keys of (participant, trial_index) for trial rows and click rows."""
    both = pd.concat([trials["participant"], clicks["participant"]], ignore_index=True)
    pcode, _ = pd.factorize(both)
    pcode = pcode.astype(np.int64)
    n_t = len(trials)
    span = int(max(trials["trial_index"].max() if n_t else 0,
                   clicks["trial_index"].max() if len(clicks) else 0)) + 1
    key_t = pcode[:n_t] * span + trials["trial_index"].to_numpy(np.int64)
    key_c = pcode[n_t:] * span + clicks["trial_index"].to_numpy(np.int64)
    return key_t, key_c


def mean_maps(index: ClickIndex, trial_weight: np.ndarray | None = None) -> np.ndarray:
    """(n_images, H, W) mean of binary trial maps over the (weighted) trials of each image.

    trial_weight: (n_trials,) 0/1 (or any non-negative) weights; default all ones.
    """
    h, w = index.shape
    n_img = len(index.stimulus_ids)
    tw = np.ones(len(index.trial_image)) if trial_weight is None else trial_weight
    sums = _pixel_sums(index, None if trial_weight is None else tw)
    denom = np.bincount(index.trial_image, weights=tw, minlength=n_img)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums.reshape(n_img, h, w) / denom[:, None, None])


def _pixel_sums(index: ClickIndex, trial_weight: np.ndarray | None) -> np.ndarray:
    """(n_images * H * W,) sum over trials of (weighted) binary trial maps."""
    h, w = index.shape
    flat = index.trial_image[index.trial] * (h * w) + index.pixel
    weights = None if trial_weight is None else trial_weight[index.trial]
    return np.bincount(flat, weights=weights, minlength=len(index.stimulus_ids) * h * w)


def image_maps(
    trials: pd.DataFrame,
    clicks: pd.DataFrame,
    shape: tuple[int, int],
    min_clicks: int = 1,
    min_subjects: int = 1,
    blur: str = "disc",
    **blur_kw: float,
) -> ImageMaps:
    """Per-image human maps: mean over participants of binary click maps, then blurred."""
    idx = click_index(trials, clicks, shape, min_clicks, min_subjects)
    maps = blur_maps(mean_maps(idx), blur, **blur_kw)
    n_sub = np.bincount(idx.trial_image, minlength=len(idx.stimulus_ids))
    return ImageMaps(maps, idx.stimulus_ids, n_sub)


def rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rho between matching rows: a, b (n, ...) -> (n,); average ranks for ties.

    A constant row gives NaN (as scipy.stats.spearmanr).
    """
    return rowwise_pearson(average_ranks(a), average_ranks(b))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..p within each row of x (n, ...) -> (n, p), ties given their average rank.

    Same as scipy.stats.rankdata(x, axis=1) (method "average"), with one unstable argsort and
    one bincount over all rows, about twice as fast on image maps.
    """
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    n, p = x.shape
    order = (np.argsort(x, axis=1) + (np.arange(n) * p)[:, None]).ravel()  # flat positions
    xs = x.ravel()[order].reshape(n, p)
    diff = xs[:, 1:] != xs[:, :-1]
    first = np.ones((n, p), bool)  # first sorted position of a run of equal values
    first[:, 1:] = diff
    last = np.ones((n, p), bool)
    last[:, :-1] = diff
    idx = np.arange(n * p)
    start = np.maximum.accumulate(np.where(first.ravel(), idx, 0))
    end = np.minimum.accumulate(np.where(last.ravel(), idx, n * p)[::-1])[::-1]
    row0 = np.repeat(np.arange(n) * p, p)
    ranks = np.empty(n * p)
    ranks[order] = (start + end) / 2 + 1 - row0  # the mean rank of the element's run
    return ranks.reshape(n, p)


def rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching rows: a, b (n, ...) -> (n,); constant rows give NaN."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / den
    return np.where(den > 0, r, np.nan)


@dataclass
class NoiseCeiling:
    """Split-half reliability of the human maps.

    ceiling, floor: mean over images and repetitions; per_image_ceiling, per_image_floor:
    (n_images,) means over repetitions, NaN for an image with fewer than 2 trials (it cannot be
    split); stimulus_ids: (n_images,). ceiling_sb: the ceiling stepped up to the full sample
    (`spearman_brown`), the expected Spearman between two independent groups as large as all
    the trials of an image.
    """

    ceiling: float
    floor: float
    per_image_ceiling: np.ndarray
    per_image_floor: np.ndarray
    stimulus_ids: np.ndarray
    n_repeats: int

    @property
    def ceiling_sb(self) -> float:
        return float(spearman_brown(self.ceiling))


def spearman_brown(r: float | np.ndarray, factor: float = 2.0) -> np.ndarray:
    """Spearman-Brown prophecy: the reliability of a measure `factor` times as long,
    factor * r / (1 + (factor - 1) * r); a split-half r gives the full sample's with factor 2.
    NaN where the denominator is not positive (r <= -1 / (factor - 1))."""
    r = np.asarray(r, np.float64)
    den = 1 + (factor - 1) * r
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, factor * r / den, np.nan)


def split_half_ceiling(
    index: ClickIndex,
    n_repeats: int = 50,
    seed: int = 0,
    blur: str = "disc",
    **blur_kw: float,
) -> NoiseCeiling:
    """Split-half noise ceiling and floor of per-image maps (Harmonization/ClickMe).

    Each repetition shuffles the trials of every image, splits them in two halves, averages and
    blurs each half, and takes Spearman between the halves (ceiling); the floor pairs the first
    half of an image with the second half of another image (a random derangement).
    An image with fewer than 2 trials cannot be split: its per-image values are NaN and the
    means leave it out. Raises ValueError when no image has 2 trials.
    """
    n_img = len(index.stimulus_ids)
    per_img = np.bincount(index.trial_image, minlength=n_img)
    splittable = per_img >= 2
    if not splittable.any():
        raise ValueError("split-half ceiling needs at least 2 trials on an image")
    if not splittable.all():
        sub = split_half_ceiling(subset_images(index, splittable), n_repeats, seed, blur,
                                 **blur_kw)
        pc, pf = np.full(n_img, np.nan), np.full(n_img, np.nan)
        pc[splittable], pf[splittable] = sub.per_image_ceiling, sub.per_image_floor
        return NoiseCeiling(sub.ceiling, sub.floor, pc, pf, index.stimulus_ids, n_repeats)
    rng = np.random.default_rng(seed)
    n_tr = len(index.trial_image)
    starts = np.concatenate([[0], np.cumsum(per_img)[:-1]])
    h, w = index.shape
    total = _pixel_sums(index, None).reshape(n_img, h, w)
    blur_total = blur_maps(total, blur, **blur_kw)
    flat = index.trial_image[index.trial] * (h * w) + index.pixel
    ceil = np.zeros((n_repeats, n_img))
    floor = np.zeros((n_repeats, n_img))
    for r in range(n_repeats):
        order = np.lexsort((rng.random(n_tr), index.trial_image))
        pos = np.empty(n_tr, np.int64)
        pos[order] = np.arange(n_tr) - starts[index.trial_image[order]]
        first = (pos < per_img[index.trial_image] // 2).astype(np.float64)
        n_a = np.bincount(index.trial_image, weights=first, minlength=n_img)[:, None, None]
        sum_a = np.bincount(flat, weights=first[index.trial], minlength=total.size).reshape(
            total.shape)
        # blur is linear: blur(B) = blur(all) - blur(A), one blur per repeat. Where B has no
        # click, direct convolution sums the same numbers in the same order (difference exactly
        # 0); FFT round-off is zeroed as in blur_maps so that ties stay ties.
        blur_a = blur_maps(sum_a, blur, **blur_kw)
        blur_b = blur_total - blur_a
        blur_b[blur_b <= 1e-12 * blur_total.max(axis=(1, 2), keepdims=True)] = 0.0
        ra = average_ranks(_quantise(blur_a / n_a))
        rb = average_ranks(_quantise(blur_b / (per_img[:, None, None] - n_a)))
        ceil[r] = rowwise_pearson(ra, rb)
        if n_img > 1:
            perm = rng.permutation(n_img)
            other = np.empty(n_img, np.int64)
            other[perm] = np.roll(perm, 1)  # a derangement: no image paired with itself
            floor[r] = rowwise_pearson(ra, rb[other])  # ranks of b's rows, reused
        else:
            floor[r] = np.nan
    pc = np.nanmean(ceil, axis=0)
    pf = np.nanmean(floor, axis=0) if n_img > 1 else np.full(n_img, np.nan)
    return NoiseCeiling(float(np.nanmean(pc)), float(np.nanmean(pf)) if n_img > 1 else np.nan,
                        pc, pf, index.stimulus_ids, n_repeats)


def subset_images(index: ClickIndex, keep: np.ndarray) -> ClickIndex:
    """The ClickIndex of the images where `keep` (n_images,) bool is True, renumbered."""
    keep_t = keep[index.trial_image]
    new_img = np.cumsum(keep) - 1
    new_trial = np.cumsum(keep_t) - 1
    sel = keep_t[index.trial]
    return ClickIndex(trial=new_trial[index.trial[sel]], pixel=index.pixel[sel],
                      trial_image=new_img[index.trial_image[keep_t]],
                      stimulus_ids=index.stimulus_ids[keep], shape=index.shape)


def _quantise(m: np.ndarray, digits: int = 9) -> np.ndarray:
    """Round each (H, W) map to `digits` significant digits of its maximum, so that values
    equal in exact arithmetic (but a few ulp apart after the blur shortcut) tie again."""
    scale = m.max(axis=(-2, -1), keepdims=True)
    scale[scale == 0] = 1.0
    return np.round(m / scale * 10.0**digits)


def resize_map(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a (h, w) map to `shape` (block mean when shrinking by an integer, else bilinear)."""
    h, w = m.shape
    H, W = shape
    if (h, w) == (H, W):
        return m.astype(np.float64)
    if h % H == 0 and w % W == 0:
        return m.reshape(H, h // H, W, w // W).mean(axis=(1, 3)).astype(np.float64)
    return ndimage.zoom(m.astype(np.float64), (H / h, W / w), order=1).clip(min=0)
