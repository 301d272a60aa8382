"""Read a stimulus manifest (docs/formats.md section 1) and its PNGs into model-range tensors."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import torch

from models.data.preprocess import load_stimulus

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


def load_images(base: Path, rows: list[dict[str, Any]], size: int | None = None) -> torch.Tensor:
    """(N, 1, size, size) model-range images of `rows` (paths relative to `base`), read and resized
    by `models.data.preprocess.load_stimulus` (area averaging / bilinear, as the data loaders do)
    when the PNG is not size x size (None keeps the PNGs' size)."""
    out = []
    for r in rows:
        p = base / str(r["path"])
        if not p.is_file():
            raise FileNotFoundError(f"path: stimulus {r['stimulus_id']} file {str(p)!r} is missing")
        try:
            img = load_stimulus(p, size or None)
        except OSError as exc:
            raise ValueError(f"path: stimulus {r['stimulus_id']} file {str(p)!r} is not a readable image ({exc})") from exc
        out.append(img)
    shapes = {tuple(x.shape) for x in out}
    if len(shapes) > 1:
        raise ValueError(f"path: stimuli have different sizes {sorted(shapes)}; pass a model size")
    return torch.stack(out)
