"""The 20 one-shot runs of Lake et al. (2015), read from all_runs.zip without extracting:
20-way within-alphabet 1-shot classification; published error rates: people 4.5%, BPL 3.3%."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from models.classifiers.protonet import OneShotTask
from models.data.folder import read_gray
from models.data.preprocess import preprocess

HUMAN_ERROR = 0.045  # Lake et al. 2015, people on the same 20 runs


def load_one_shot_runs(path: Path | str, size: int = 28, threshold: float | None = 0.25) -> list[OneShotTask]:
    """One OneShotTask per run: support = training/classNN.png in class order, query =
    test/itemNN.png in item order, answer = the support index `class_labels.txt` names. Images
    are inverted to ink = +1, resized to (size, size) and binarised at `threshold` like
    models.data's Omniglot loader."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"runs: {str(path)!r} does not exist")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())

        def image(name: str) -> torch.Tensor:
            if name not in names:
                raise ValueError(f"runs: {name} is missing from {path.name}")
            arr = preprocess(read_gray(io.BytesIO(zf.read(name))), size, invert=True, threshold=threshold)
            return torch.from_numpy(np.ascontiguousarray(arr))[None]

        runs = sorted({PurePosixPath(n).parts[0] for n in names if n.endswith("class_labels.txt")})
        if not runs:
            raise ValueError(f"runs: no runNN/class_labels.txt in {path.name}")
        tasks = []
        for run in runs:
            pairs = [line.split() for line in zf.read(f"{run}/class_labels.txt").decode().splitlines() if line.strip()]
            support_names = sorted({p[1] for p in pairs})
            support = torch.stack([image(n) for n in support_names])
            query = torch.stack([image(p[0]) for p in pairs])
            answer = torch.tensor([support_names.index(p[1]) for p in pairs])
            tasks.append(OneShotTask(support, query, answer))
    return tasks
