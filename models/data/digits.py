"""The embedded default: scikit-learn's handwritten digits with class augmentation.

sklearn ships the 1,797 8x8 digit drawings inside the package (no download). As in the Diffusion
as Artists code, each fixed transform of a class makes a new class (`digit3_rot90`), so one-shot
splits with held-out classes exist. 180-degree rotation is left out of the default set because it
maps 6 onto 9.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from models.data.dataset import ImageDataset
from models.data.preprocess import to_model_range

TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "id": lambda a: a,
    "rot90": lambda a: np.rot90(a, 1),
    "rot180": lambda a: np.rot90(a, 2),
    "rot270": lambda a: np.rot90(a, 3),
    "flip": lambda a: a[:, ::-1],
}
DEFAULT_AUGMENT: tuple[str, ...] = ("id", "rot90", "rot270", "flip")
# How a participant is told about each transform (np.rot90 turns anticlockwise; "flip" swaps
# left and right); models.data.class_text builds the class's display text from these.
TRANSFORM_TEXT: dict[str, str] = {
    "id": "",
    "rot90": "rotated a quarter turn to the left",
    "rot180": "upside down",
    "rot270": "rotated a quarter turn to the right",
    "flip": "mirrored left to right",
}


def read_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) float pixel values 0..16 and (1797,) int digit labels, read from the CSV that
    ships inside scikit-learn (sklearn/datasets/data/digits.csv.gz, the file its load_digits reads)
    without importing scikit-learn, whose import alone takes seconds."""
    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt") as fh:
                table = np.loadtxt(fh, delimiter=",", dtype=np.float64)
            return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits as sk_load_digits

    raw = sk_load_digits()
    return raw.images, raw.target.astype(np.int64)


def _resize_all(unit: np.ndarray, size: int, threshold: float | None) -> list[np.ndarray]:
    """(N, 8, 8) ink in [0, 1] -> N (size, size) images in [-1, 1]: bilinear (pixel centres, as
    PIL does when enlarging; area averaging when shrinking), then binarised."""
    x = torch.from_numpy(unit.astype(np.float32)).unsqueeze(1)
    if size >= unit.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    else:
        x = torch.nn.functional.adaptive_avg_pool2d(x, size)
    if threshold is not None:
        x = (x >= threshold).float()
    return list(to_model_range(x[:, 0].numpy()).astype(np.float32))


def load_digits(
    size: int = 16,
    augment: Sequence[str] = DEFAULT_AUGMENT,
    threshold: float | None = 0.5,
    max_per_class: int | None = None,
) -> ImageDataset:
    """Digits upscaled to (size, size), binarised at `threshold`, one class per (digit, transform).

    Class names: `digit{d}` for the identity, `digit{d}_{transform}` otherwise. Ids:
    `digits/{class}/{index in sklearn's order:04d}`.
    """
    unknown = [t for t in augment if t not in TRANSFORMS]
    if unknown or not augment:
        raise ValueError(f"augment: unknown transform(s) {unknown}; choose from {sorted(TRANSFORMS)}")
    images8, targets = read_sklearn_digits()
    base = _resize_all(images8 / 16.0, size, threshold)
    class_names = [
        f"digit{d}" if t == "id" else f"digit{d}_{t}" for t in augment for d in range(10)
    ]
    images, labels, ids = [], [], []
    for ti, t in enumerate(augment):
        counts = [0] * 10
        for i, (img, d) in enumerate(zip(base, targets, strict=True)):
            if max_per_class is not None and counts[d] >= max_per_class:
                continue
            counts[d] += 1
            label = ti * 10 + int(d)
            images.append(np.ascontiguousarray(TRANSFORMS[t](img)))
            labels.append(label)
            ids.append(f"digits/{class_names[label]}/{i:04d}")
    return ImageDataset(
        images=torch.from_numpy(np.stack(images)).unsqueeze(1),
        labels=torch.tensor(labels, dtype=torch.long),
        class_names=class_names,
        ids=ids,
        name="digits" if tuple(augment) != ("id",) else "digits10",
    )
