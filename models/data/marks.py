"""A synthetic data set with a known diagnostic region, made by the code (no files).

Each image holds random pen strokes (line segments) that carry no class information and one
small class mark (a fixed binary pattern per class) at one of the four corners, drawn at random.
Only the mark decides the class, so an attribution map of the class should put its mass on the
mark's box: `masks` gives that box per image. Strokes keep one pixel clear of the box, so the
mark is never overdrawn. Used by the known-truth attribution benchmark and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.data.dataset import ImageDataset

# 4x4 patterns (1 = ink), scaled up by an integer factor for larger images.
PATTERNS: dict[str, tuple[str, ...]] = {
    "ring": ("1111", "1001", "1001", "1111"),
    "cross": ("1001", "0110", "0110", "1001"),
    "block": ("1111", "1111", "1111", "1111"),
    "ell": ("1000", "1000", "1000", "1111"),
    "bars": ("1111", "0000", "1111", "0000"),
    "tee": ("1111", "0110", "0110", "0110"),
}


@dataclass
class MarkedImages:
    """The data set and its known truth.

    data: images (N, 1, size, size) in [-1, 1], ink = +1, class names `mark_<pattern>`.
    masks: (N, size, size) bool, True on the class mark's box (the diagnostic region).
    corners: (N,) int, the corner of the mark (0 top-left, 1 top-right, 2 bottom-left,
    3 bottom-right).
    """

    data: ImageDataset
    masks: np.ndarray
    corners: np.ndarray


DEFAULT_CLASSES = ("ring", "cross", "block", "ell")


def _corner_starts(size: int) -> list[tuple[int, int]]:
    """Top-left (row, col) of the mark's box at each corner, one pixel in from the edges."""
    side = size // 4
    return [(1, 1), (1, size - 1 - side), (size - 1 - side, 1), (size - 1 - side, size - 1 - side)]


def _pattern(name: str, scale: int) -> np.ndarray:
    base = np.array([[c == "1" for c in row] for row in PATTERNS[name]], dtype=bool)
    return np.kron(base, np.ones((scale, scale), dtype=bool))


def _segment(canvas: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> None:
    """Ink the pixels a straight pen stroke from p0 to p1 (row, col) passes through."""
    n = int(np.ceil(np.abs(p1 - p0).max())) * 2 + 1
    pts = np.rint(np.linspace(p0, p1, n)).astype(int)
    h, w = canvas.shape
    ok = (pts[:, 0] >= 0) & (pts[:, 0] < h) & (pts[:, 1] >= 0) & (pts[:, 1] < w)
    canvas[pts[ok, 0], pts[ok, 1]] = True


def make_marks(
    n_per_class: int = 250,
    size: int = 16,
    classes: tuple[str, ...] = DEFAULT_CLASSES,
    n_strokes: tuple[int, int] = (2, 4),
    seed: int = 0,
) -> MarkedImages:
    """`n_per_class` images per class of `size` px (a multiple of 4, at least 16): 2-4 (by
    default) strokes between random points, then the class mark, side size / 4, one pixel in
    from a random corner. Deterministic in `seed`."""
    if size < 16 or size % 4:
        raise ValueError(f"size: must be a multiple of 4 and >= 16, got {size}")
    unknown = [c for c in classes if c not in PATTERNS]
    if unknown or len(classes) < 2:
        raise ValueError(f"classes: need >= 2 of {sorted(PATTERNS)}, got {list(classes)}")
    if n_per_class < 1:
        raise ValueError(f"n_per_class: must be >= 1, got {n_per_class}")
    lo, hi = n_strokes
    rng = np.random.default_rng(seed)
    side = size // 4
    starts = _corner_starts(size)
    n = n_per_class * len(classes)
    labels = np.repeat(np.arange(len(classes)), n_per_class)
    corners = rng.integers(0, 4, n)
    images = np.zeros((n, size, size), dtype=bool)
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        r, c = starts[corners[i]]
        masks[i, r : r + side, c : c + side] = True
        keep_clear = np.zeros((size, size), dtype=bool)
        keep_clear[max(0, r - 1) : r + side + 1, max(0, c - 1) : c + side + 1] = True
        strokes = np.zeros((size, size), dtype=bool)
        for _ in range(int(rng.integers(lo, hi + 1))):
            _segment(strokes, rng.uniform(0, size - 1, 2), rng.uniform(0, size - 1, 2))
        images[i] = strokes & ~keep_clear
        images[i, r : r + side, c : c + side] = _pattern(classes[labels[i]], side // 4)
    names = [f"mark_{c}" for c in classes]
    data = ImageDataset(
        images=torch.from_numpy(images[:, None].astype(np.float32) * 2.0 - 1.0),
        labels=torch.from_numpy(labels.astype(np.int64)),
        class_names=names,
        ids=[f"marks/{names[labels[i]]}/{i:05d}" for i in range(n)],
        name="marks",
    )
    return MarkedImages(data=data, masks=masks, corners=corners)


def find_marks(
    images: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...] = DEFAULT_CLASSES,
    min_match: float = 15 / 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Where a generated image shows its class's mark: for each image (N, 1, size, size) in
    [-1, 1] (ink > 0) and its class index, the corner box that best matches the class pattern.
    Returns (masks (N, size, size) bool, found (N,) bool: at least `min_match` of the box's
    pixels agree with the pattern). Makes the known truth of model samples, whose mark the
    model placed itself."""
    ink = images[:, 0].cpu().numpy() > 0
    n, size = ink.shape[0], ink.shape[-1]
    side = size // 4
    starts = _corner_starts(size)
    masks = np.zeros((n, size, size), dtype=bool)
    found = np.zeros(n, dtype=bool)
    for i in range(n):
        want = _pattern(classes[int(labels[i])], side // 4)
        agree = [float((ink[i, r : r + side, c : c + side] == want).mean()) for r, c in starts]
        best = int(np.argmax(agree))
        r, c = starts[best]
        masks[i, r : r + side, c : c + side] = True
        found[i] = agree[best] >= min_match
    return masks, found
