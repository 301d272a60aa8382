"""Any folder of class sub-folders of images (also Omniglot's ALPHABET/characterNN layout)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from models.data.dataset import ImageDataset
from models.data.preprocess import preprocess

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"}


def read_gray(source) -> np.ndarray:
    """Open an image file (path or file object) as an (H, W) float32 grey array in [0, 1]."""
    with Image.open(source) as im:
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def build_dataset(
    items: Iterable[tuple[str, str, np.ndarray]],
    name: str,
    size: int,
    invert: bool | None,
    threshold: float | None,
    max_per_class: int | None,
) -> ImageDataset:
    """(class name, image id, raw grey image) triples -> ImageDataset, classes and images sorted."""
    per_class: dict[str, list[tuple[str, np.ndarray]]] = {}
    for cls, image_id, gray in items:
        per_class.setdefault(cls, []).append((image_id, gray))
    if not per_class:
        raise ValueError(f"{name}: no images found")
    class_names = sorted(per_class)
    images, labels, ids = [], [], []
    for label, cls in enumerate(class_names):
        entries = sorted(per_class[cls], key=lambda e: e[0])
        if max_per_class is not None:
            entries = entries[:max_per_class]
        for image_id, gray in entries:
            images.append(preprocess(gray, size, invert=invert, threshold=threshold))
            labels.append(label)
            ids.append(image_id)
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:3]
        raise ValueError(f"{name}: duplicate image ids {dup}")
    return ImageDataset(
        images=torch.from_numpy(np.stack(images)).unsqueeze(1),
        labels=torch.tensor(labels, dtype=torch.long),
        class_names=class_names,
        ids=ids,
        name=name,
    )


def iter_folder_images(root: Path) -> list[Path]:
    """All image files under `root`, sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_folder(
    root: Path,
    size: int,
    invert: bool | None = None,
    threshold: float | None = 0.5,
    max_per_class: int | None = None,
) -> ImageDataset:
    """Class = the image's parent folder relative to `root` (nested folders give `a/b` names);
    id = `folder:{root name}/{relative path without suffix}`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.root: folder {str(root)!r} does not exist")
    name = f"folder:{root.name}"
    files = [p for p in iter_folder_images(root) if p.parent != root]
    if not files:
        raise ValueError(f"data.root: no images in class sub-folders of {str(root)!r}")
    items = (
        (p.parent.relative_to(root).as_posix(), f"{name}/{p.relative_to(root).with_suffix('').as_posix()}", read_gray(p))
        for p in files
    )
    return build_dataset(items, name, size, invert, threshold, max_per_class)
