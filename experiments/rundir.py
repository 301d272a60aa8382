"""One folder per run: config.json, log.txt, metrics.json, figures/, report.md.

`RunDir` also seeds every RNG the pipelines touch, so the same seed gives the same numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from experiments.profiles import PROJECT_ROOT, Profile

DEFAULT_RUNS = PROJECT_ROOT / "data" / "runs"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) global RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return value


class RunDir:
    """The output folder of one pipeline run and its logger."""

    def __init__(self, pipeline: str, profile: Profile, seed: int, out: Path | str | None = None,
                 argv: list[str] | None = None, cache: Path | str | None = None) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        self.path = Path(out).resolve() if out else DEFAULT_RUNS / f"{pipeline}-{profile.name}-s{seed}-{stamp}"
        self.path.mkdir(parents=True, exist_ok=True)
        self.figures = self.path / "figures"
        self.figures.mkdir(exist_ok=True)
        self.pipeline, self.profile, self.seed = pipeline, profile, seed
        self.cache = Path(cache).resolve() if cache else DEFAULT_RUNS / "cache"
        self.metrics: dict[str, Any] = {}
        self.started = time.perf_counter()
        self.log = logging.getLogger(f"experiments.{pipeline}.{id(self)}")
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        handler = logging.FileHandler(self.path / "log.txt", mode="w")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter(f"[{pipeline}] %(message)s"))
        self.log.handlers = [handler, console]
        self.write_json("config.json", {
            "pipeline": pipeline, "seed": seed, "profile_name": profile.name,
            "profile_digest": profile.digest(), "device": profile.device,
            "command": "python -m experiments " + " ".join(argv or []),
            "python": platform.python_version(), "torch": torch.__version__,
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **profile.to_dict(),
        })
        seed_everything(seed)

    def write_json(self, name: str, data: Any) -> Path:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")
        return path

    def save_figure(self, name: str, fig: Figure, dpi: int = 110) -> Path:
        path = self.figures / f"{name}.png"
        fig.savefig(path, dpi=dpi)
        return path

    def finish(self, report_md: str) -> Path:
        """Write metrics.json and report.md; returns the run folder."""
        self.metrics["wall_s"] = round(time.perf_counter() - self.started, 1)
        self.write_json("metrics.json", self.metrics)
        (self.path / "report.md").write_text(report_md)
        self.log.info("run folder: %s", self.path)
        for h in self.log.handlers:
            h.close()
        return self.path


def md_table(rows: list[dict[str, Any]], columns: list[str] | None = None, digits: int = 3) -> str:
    """A markdown table of dict rows (floats rounded)."""
    if not rows:
        return "(no rows)\n"
    columns = columns or list(rows[0])

    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return "" if not np.isfinite(v) else f"{v:.{digits}f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def markdown(parts: list[str]) -> str:
    """Join report parts as markdown blocks (a blank line between blocks)."""
    return "\n".join(p.rstrip("\n") + "\n" for p in parts if p.strip())
