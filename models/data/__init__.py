"""Data sets for the diffusion models: one in-memory `ImageDataset` type, loaders, splits.

`load_dataset(spec, root, size)` specs:
- `digits`: embedded sklearn digits with class augmentation (40 classes: identity, rot90, rot270,
  flip); `digits10`: the 10 plain digit classes.
- `marks`: synthetic images whose class is decided by a small mark at a known place
  (models.data.marks; the known-truth attribution benchmark's data).
- `omniglot`: `root` is a folder of ALPHABET/characterNN/*.png, a folder with the images_*.zip
  files, or one zip.
- `quickdraw`: `root` is a folder of per-category `.npy` bitmaps and/or simplified `.ndjson`.
- `folder`: `root` is any folder of class sub-folders.
"""

from __future__ import annotations

from pathlib import Path

from models.data.dataset import ImageDataset
from models.data.digits import load_digits
from models.data.folder import load_folder
from models.data.marks import make_marks
from models.data.omniglot import load_omniglot
from models.data.quickdraw import load_quickdraw
from models.data.splits import apply_split, choose_exemplars, one_shot_split

AUTO_THRESHOLD = {"omniglot": 0.25}
SPECS = ("digits", "digits10", "marks", "omniglot", "quickdraw", "folder")
EMBEDDED = ("digits", "digits10", "marks")  # made in-process: no data.root

__all__ = [
    "EMBEDDED",
    "SPECS",
    "ImageDataset",
    "apply_split",
    "choose_exemplars",
    "load_dataset",
    "one_shot_split",
]


def load_dataset(
    spec: str,
    root: Path | str | None = None,
    size: int = 16,
    threshold: float | None | str = "auto",
    max_per_class: int | None = None,
) -> ImageDataset:
    """Load a data set by spec (see module doc) as (N, 1, size, size) images in [-1, 1], ink = +1.

    `threshold`: binarisation level on the [0, 1] ink scale, None keeps grey levels, "auto" uses
    the data set's default (0.5; 0.25 for Omniglot, whose thin strokes fade when shrunk from 105 px).
    Errors name the field: `data.dataset` for an unknown spec, `data.root` for a missing folder.
    """
    if spec not in SPECS:
        raise ValueError(f"data.dataset: unknown data set {spec!r}; choose from {', '.join(SPECS)}")
    if not isinstance(size, int) or size < 4:
        raise ValueError(f"data.size: must be an integer >= 4, got {size!r}")
    if threshold == "auto":
        threshold = AUTO_THRESHOLD.get(spec, 0.5)
    if spec in ("digits", "digits10"):
        augment = ("id",) if spec == "digits10" else None
        kwargs = {"augment": augment} if augment else {}
        return load_digits(size, threshold=threshold, max_per_class=max_per_class, **kwargs)
    if spec == "marks":
        return make_marks(max_per_class or 250, size).data
    if root is None or str(root) == "":
        raise ValueError(f"data.root: the {spec} data set needs a folder (data.root / --data-root)")
    root = Path(root).expanduser()
    if spec == "omniglot":
        return load_omniglot(root, size, threshold=threshold, max_per_class=max_per_class)
    if spec == "quickdraw":
        return load_quickdraw(root, size, threshold=threshold, max_per_class=max_per_class or 1000)
    return load_folder(root, size, threshold=threshold, max_per_class=max_per_class)
