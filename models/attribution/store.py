"""Write model maps as docs/formats.md section 4 prescribes: OUT/METHOD/STIMULUS_ID.npy (float32,
(H, W), non-negative) and OUT/METHOD/index.json with the method, its parameters, the checkpoint
and the stimulus ids. A shard i of n writes index.shard{i}of{n}.json; `merge_shards` joins them
into index.json by stimulus id."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SAFE_ID = re.compile(r"^[A-Za-z0-9_.+-][A-Za-z0-9_.+=-]*$")


def index_name(shard: tuple[int, int]) -> str:
    i, n = shard
    return "index.json" if n == 1 else f"index.shard{i}of{n}.json"


def write_maps(
    out: Path | str,
    method: str,
    ids: Sequence[str],
    maps: np.ndarray,
    params: dict[str, Any],
    checkpoint: str,
    *,
    shard: tuple[int, int] = (0, 1),
    skipped: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save maps (N, H, W) under OUT/METHOD/ and write this shard's index; returns the index path.
    Stimulus ids must be file-name safe; maps must be finite and non-negative."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or len(maps) != len(ids):
        raise ValueError(f"maps: expected ({len(ids)}, H, W), got {maps.shape}")
    if not np.isfinite(maps).all() or (maps < 0).any():
        raise ValueError(f"maps: {method} produced negative or non-finite values")
    folder = Path(out) / method
    folder.mkdir(parents=True, exist_ok=True)
    for sid, m in zip(ids, maps, strict=True):
        if not SAFE_ID.match(sid):
            raise ValueError(f"stimulus_id: {sid!r} is not safe as a file name")
        np.save(folder / f"{sid}.npy", m)
    index = {
        "method": method,
        "params": params,
        "checkpoint": checkpoint,
        "stimulus_ids": list(ids),
        "skipped": dict(skipped or {}),
        "shard": f"{shard[0]}/{shard[1]}",
        **(extra or {}),
    }
    path = folder / index_name(shard)
    path.write_text(json.dumps(index, indent=1))
    return path


def merge_shards(out: Path | str) -> list[Path]:
    """For every METHOD folder under OUT with index.shard*of*.json files: check that all n shards
    are there and agree on method, params and checkpoint, then write index.json listing every
    stimulus id (sorted). Returns the written index paths."""
    written = []
    for folder in sorted(p for p in Path(out).iterdir() if p.is_dir()):
        parts = sorted(folder.glob("index.shard*of*.json"))
        if not parts:
            continue
        docs = [json.loads(p.read_text()) for p in parts]
        n = {d["shard"].split("/")[1] for d in docs}
        shards = {d["shard"] for d in docs}
        if len(n) != 1 or len(shards) != int(next(iter(n))):
            raise ValueError(f"merge: {folder.name} has shards {sorted(shards)}, not one complete run")
        for key in ("method", "params", "checkpoint"):
            if len({json.dumps(d[key], sort_keys=True) for d in docs}) != 1:
                raise ValueError(f"merge: shards of {folder.name} differ in {key}")
        ids: list[str] = sorted({s for d in docs for s in d["stimulus_ids"]})
        merged = {**docs[0], "stimulus_ids": ids, "shard": f"merged from {len(docs)} shards",
                  "skipped": {k: v for d in docs for k, v in d.get("skipped", {}).items()}}
        for key in docs[0]:
            if isinstance(docs[0][key], dict) and key not in ("params", "skipped"):
                merged[key] = {k: v for d in docs for k, v in d.get(key, {}).items()}
        path = folder / "index.json"
        path.write_text(json.dumps(merged, indent=1))
        written.append(path)
    if not written:
        raise ValueError(f"merge: no METHOD/index.shard*of*.json under {str(out)!r}")
    return written
