"""Read a stimulus manifest (docs/formats.md section 1) and its PNGs into model-range tensors."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

REQUIRED = ("stimulus_id", "path", "source", "class_label")


def manifest_file(path: Path | str) -> Path:
    """The manifest file: `path` itself, or manifest.json / manifest.csv inside a folder."""
    path = Path(path)
    if path.is_dir():
        for name in ("manifest.json", "manifest.csv"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"--manifest: no manifest.json or manifest.csv in {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"--manifest: {str(path)!r} does not exist")
    return path


def read_manifest(path: Path | str) -> list[dict[str, Any]]:
    """Rows of a manifest.json ({"stimuli": [...]}) or manifest.csv, as dicts of strings/numbers;
    a missing column or a repeated stimulus_id is a ValueError naming it."""
    path = manifest_file(path)
    if path.suffix == ".json":
        try:
            rows = json.loads(path.read_text())["stimuli"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"--manifest: {path.name} is not a manifest (needs a 'stimuli' list)") from exc
    else:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"--manifest: {path.name} lists no stimuli")
    missing = [c for c in REQUIRED if c not in rows[0]]
    if missing:
        raise ValueError(f"--manifest: column(s) {', '.join(missing)} missing from {path.name}")
    ids = [str(r["stimulus_id"]) for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("stimulus_id: repeated in the manifest")
    return [{k: ("" if v is None else v) for k, v in r.items()} for r in rows]


def read_png(path: Path) -> torch.Tensor:
    """A stimulus PNG (black ink on white) as (1, H, W) float32 in [-1, 1], ink = +1."""
    with Image.open(path) as im:
        gray = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy((1.0 - gray) * 2.0 - 1.0).unsqueeze(0)


def load_images(base: Path, rows: list[dict[str, Any]], size: int | None = None) -> torch.Tensor:
    """(N, 1, size, size) model-range images of `rows` (paths relative to `base`); resized with
    area averaging / bilinear when the PNG is not size x size (None keeps the PNGs' size)."""
    out = []
    for r in rows:
        p = base / str(r["path"])
        if not p.is_file():
            raise FileNotFoundError(f"path: stimulus {r['stimulus_id']} file {str(p)!r} is missing")
        try:
            img = read_png(p)
        except OSError as exc:
            raise ValueError(f"path: stimulus {r['stimulus_id']} file {str(p)!r} is not a readable image ({exc})") from exc
        out.append(to_grid(img[None], size)[0] if size else img)
    shapes = {tuple(x.shape) for x in out}
    if len(shapes) > 1:
        raise ValueError(f"path: stimuli have different sizes {sorted(shapes)}; pass a model size")
    return torch.stack(out)


def to_grid(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (N, C, H, W) to (size, size): area averaging when shrinking, bilinear otherwise."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    mode = "area" if x.shape[-1] > size else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x, size=(size, size), mode=mode, **kwargs)
