"""Omniglot: `ALPHABET/characterNN/*.png` folders or the original zips, read without extracting."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from models.data.dataset import ImageDataset
from models.data.folder import IMAGE_SUFFIXES, build_dataset, iter_folder_images, read_gray

RUNS_ZIP = "all_runs.zip"


def _zip_items(path: Path) -> Iterator[tuple[str, str, np.ndarray]]:
    with zipfile.ZipFile(path) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            p = PurePosixPath(info.filename)
            if info.is_dir() or p.suffix.lower() not in IMAGE_SUFFIXES or len(p.parts) < 3:
                continue
            cls = f"{p.parts[-3]}/{p.parts[-2]}"
            with zf.open(info) as fh:
                gray = read_gray(io.BytesIO(fh.read()))
            yield cls, f"omniglot/{cls}/{p.stem}", gray


def _folder_items(root: Path) -> Iterator[tuple[str, str, np.ndarray]]:
    for p in iter_folder_images(root):
        rel = p.relative_to(root)
        if len(rel.parts) < 3:
            continue
        cls = f"{p.parent.parent.name}/{p.parent.name}"
        yield cls, f"omniglot/{cls}/{p.stem}", read_gray(p)


def _unique(items: Iterator[tuple[str, str, np.ndarray]]) -> Iterator[tuple[str, str, np.ndarray]]:
    """Keep the first of repeated ids: the minimal splits small1 and small2 both hold the same
    1,001 Greek and Latin drawings (byte-identical files)."""
    seen: set[str] = set()
    for item in items:
        if item[1] not in seen:
            seen.add(item[1])
            yield item


def omniglot_zips(root: Path) -> list[Path]:
    """The image zips in `root` (images_background*.zip, images_evaluation*.zip), sorted."""
    return sorted(p for p in root.glob("images_*.zip") if p.name != RUNS_ZIP)


def load_omniglot(
    root: Path,
    size: int = 28,
    threshold: float | None = 0.5,
    max_per_class: int | None = None,
) -> ImageDataset:
    """Omniglot from a folder of `ALPHABET/characterNN/*.png`, a folder holding the zips, or one
    zip. Class = `Alphabet/characterNN`; strokes are inverted to ink = +1 and resized from 105 px.
    Drawings found in several zips under the same id are loaded once."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"data.root: Omniglot path {str(root)!r} does not exist")
    if root.is_file():
        if root.suffix != ".zip":
            raise ValueError(f"data.root: {str(root)!r} is neither a folder nor a .zip")
        items: Iterator = _zip_items(root)
    elif zips := omniglot_zips(root):
        items = _unique(item for z in zips for item in _zip_items(z))
    else:
        items = _folder_items(root)
    try:
        return build_dataset(items, "omniglot", size, True, threshold, max_per_class)
    except ValueError as exc:
        if "no images" in str(exc):
            raise ValueError(
                f"data.root: no Omniglot images (ALPHABET/characterNN/*.png or images_*.zip) under {str(root)!r}"
            ) from exc
        raise
