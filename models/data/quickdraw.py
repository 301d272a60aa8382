"""QuickDraw: `.npy` arrays of 28x28 uint8 bitmaps (one file per category) and simplified
`.ndjson` strokes rendered to bitmaps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from models.data.dataset import ImageDataset
from models.data.folder import build_dataset

NPY_PREFIX = "full_numpy_bitmap_"
CANVAS = 256  # simplified strokes live in a 0..255 box


def category_of(path: Path) -> str:
    """`full_numpy_bitmap_cat.npy` / `full_simplified_cat.ndjson` / `cat.npy` -> `cat`."""
    stem = path.stem
    for prefix in (NPY_PREFIX, "full_simplified_", "full_raw_"):
        if stem.startswith(prefix):
            return stem[len(prefix) :]
    return stem


def render_strokes(drawing: list, line_width: int = 12, canvas: int = CANVAS) -> np.ndarray:
    """Simplified strokes [[xs, ys], ...] in 0..255 -> (canvas, canvas) float32, ink = 1."""
    img = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(img)
    for stroke in drawing:
        if len(stroke) < 2 or len(stroke[0]) != len(stroke[1]):
            raise ValueError("drawing: each stroke must be [xs, ys] of equal length")
        pts = list(zip((float(v) for v in stroke[0]), (float(v) for v in stroke[1]), strict=True))
        if len(pts) == 1:
            x, y = pts[0]
            r = line_width / 2
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
        else:
            draw.line(pts, fill=255, width=line_width, joint="curve")
    return np.asarray(img, dtype=np.float32) / 255.0


def _npy_items(path: Path, max_per_class: int | None) -> Iterator[tuple[str, str, np.ndarray]]:
    cat = category_of(path)
    arr = np.load(path, mmap_mode="r")
    if arr.ndim == 2 and arr.shape[1] == 784:
        arr = arr.reshape(-1, 28, 28)
    if arr.ndim != 3:
        raise ValueError(f"data.root: {path.name} has shape {arr.shape}; expected (N, 784) or (N, 28, 28)")
    n = arr.shape[0] if max_per_class is None else min(max_per_class, arr.shape[0])
    for i in range(n):
        yield cat, f"quickdraw/{cat}/npy{i:06d}", np.asarray(arr[i], dtype=np.float32) / 255.0


def _ndjson_items(path: Path, max_per_class: int | None) -> Iterator[tuple[str, str, np.ndarray]]:
    count = 0
    with path.open() as fh:
        for line_no, line in enumerate(fh):
            if not line.strip():
                continue
            if max_per_class is not None and count >= max_per_class:
                return
            try:
                rec = json.loads(line)
                cat = str(rec.get("word") or category_of(path))
                drawing = rec["drawing"]
            except (json.JSONDecodeError, KeyError, AttributeError) as exc:
                raise ValueError(f"data.root: {path.name} line {line_no + 1} is not a QuickDraw record") from exc
            key = rec.get("key_id", f"line{line_no:06d}")
            count += 1
            yield cat, f"quickdraw/{cat}/{key}", render_strokes(drawing)


def load_quickdraw(
    root: Path,
    size: int = 28,
    threshold: float | None = 0.5,
    max_per_class: int | None = 1000,
) -> ImageDataset:
    """All `*.npy` and `*.ndjson` files in `root`; category from the file name (npy) or the
    record's `word` (ndjson). Bitmaps are white ink on black already (no inversion)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.root: QuickDraw folder {str(root)!r} does not exist")
    files = sorted(root.glob("*.npy")) + sorted(root.glob("*.ndjson"))
    if not files:
        raise ValueError(f"data.root: no QuickDraw .npy or .ndjson files in {str(root)!r}")

    def items() -> Iterator[tuple[str, str, np.ndarray]]:
        for f in files:
            yield from (_npy_items(f, max_per_class) if f.suffix == ".npy" else _ndjson_items(f, max_per_class))

    return build_dataset(items(), "quickdraw", size, False, threshold, max_per_class)
