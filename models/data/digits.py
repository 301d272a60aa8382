"""The embedded default: scikit-learn's handwritten digits with class augmentation.

sklearn ships the 1,797 8x8 digit drawings inside the package (no download). As in the Diffusion
as Artists code, each fixed transform of a class makes a new class (`digit3_rot90`), so one-shot
splits with held-out classes exist. 180-degree rotation is left out of the default set because it
maps 6 onto 9.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from models.data.dataset import ImageDataset
from models.data.preprocess import preprocess

TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "id": lambda a: a,
    "rot90": lambda a: np.rot90(a, 1),
    "rot180": lambda a: np.rot90(a, 2),
    "rot270": lambda a: np.rot90(a, 3),
    "flip": lambda a: a[:, ::-1],
}
DEFAULT_AUGMENT: tuple[str, ...] = ("id", "rot90", "rot270", "flip")


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
    from sklearn.datasets import load_digits as sk_load_digits

    unknown = [t for t in augment if t not in TRANSFORMS]
    if unknown or not augment:
        raise ValueError(f"augment: unknown transform(s) {unknown}; choose from {sorted(TRANSFORMS)}")
    raw = sk_load_digits()
    base = [preprocess(img, size, invert=False, threshold=threshold) for img in raw.images / 16.0]
    class_names = [
        f"digit{d}" if t == "id" else f"digit{d}_{t}" for t in augment for d in range(10)
    ]
    images, labels, ids = [], [], []
    for ti, t in enumerate(augment):
        counts = [0] * 10
        for i, (img, d) in enumerate(zip(base, raw.target, strict=True)):
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
