"""Image preprocessing as the seed code does it: resize, invert to ink-on-black, binarise, scale.

Model range: float in [-1, 1] with ink = +1. Stimulus PNGs show black ink on white (as people
draw); `tensor_to_png_array` and `png_array_to_tensor` convert between the two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_ink_unit(gray: np.ndarray, invert: bool | None = None) -> np.ndarray:
    """(H, W) grey values (any numeric range) -> float32 in [0, 1] with ink = 1.

    `invert=None` decides from the image: a bright background (median > half range) is inverted.
    """
    arr = np.asarray(gray, dtype=np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    unit = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if invert is None:
        invert = float(np.median(unit)) > 0.5
    return 1.0 - unit if invert else unit


def resize_unit(img: np.ndarray, size: int) -> np.ndarray:
    """Resize an (H, W) float image in [0, 1] to (size, size): area averaging when shrinking,
    bilinear when enlarging (so thin strokes keep their mass)."""
    if img.shape == (size, size):
        return img.astype(np.float32)
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32))  # mode F
    method = Image.Resampling.BOX if img.shape[0] > size else Image.Resampling.BILINEAR
    return np.asarray(pil.resize((size, size), method), dtype=np.float32)


def binarise(img: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """[0, 1] image -> {0, 1} at `threshold` (ink where value >= threshold)."""
    return (img >= threshold).astype(np.float32)


def to_model_range(img: np.ndarray) -> np.ndarray:
    """[0, 1] -> [-1, 1]."""
    return img * 2.0 - 1.0


def preprocess(
    gray: np.ndarray, size: int, invert: bool | None = None, threshold: float | None = 0.5
) -> np.ndarray:
    """Raw (H, W) grey image -> (size, size) float32 in [-1, 1], ink = +1, binarised unless
    `threshold` is None."""
    unit = resize_unit(to_ink_unit(gray, invert), size)
    if threshold is not None:
        unit = binarise(unit, threshold)
    return to_model_range(unit).astype(np.float32)


def tensor_to_png_array(x: torch.Tensor) -> np.ndarray:
    """(1, H, W) or (H, W) model-range tensor -> (H, W) uint8, black ink on white."""
    arr = x.detach().float().cpu().clamp(-1, 1).reshape(x.shape[-2], x.shape[-1]).numpy()
    return np.round((1.0 - (arr + 1.0) / 2.0) * 255.0).astype(np.uint8)


def png_array_to_tensor(arr: np.ndarray, size: int | None = None) -> torch.Tensor:
    """(H, W) uint8 black-ink-on-white (a stimulus PNG) -> (1, H, W) float32 in [-1, 1], ink = +1;
    with `size`, resized to (1, size, size) by `resize_unit` (as the data loaders resize)."""
    unit = 1.0 - np.asarray(arr, dtype=np.float32) / 255.0
    if size is not None:
        unit = resize_unit(unit, size)
    return torch.from_numpy(to_model_range(unit)).unsqueeze(0)


def load_stimulus(path: str | Path, size: int | None = None) -> torch.Tensor:
    """Read a stimulus PNG written by `models.sample` into the model range, (1, H, W), or
    (1, size, size) resized by `resize_unit` when `size` is given."""
    with Image.open(path) as im:
        return png_array_to_tensor(np.asarray(im.convert("L")), size)
