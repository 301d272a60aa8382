"""stages.read_stimuli reads a manifest with models.attribution.manifest: JSON or CSV, a missing
column is a ValueError naming it (never a KeyError), images in the model range, ink = +1."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.stages import read_stimuli

COLUMNS = ["stimulus_id", "path", "source", "model", "class_label", "guidance", "width", "height"]


def _folder(tmp_path: Path, drop: str | None = None) -> Path:
    (tmp_path / "images").mkdir()
    rows = []
    for i, (source, model, w) in enumerate([("model", "cfgdm", 1.0), ("real", "", None)]):
        ink = np.full((8, 8), 255, np.uint8)
        ink[i, :] = 0  # one black row of ink on white
        Image.fromarray(ink).save(tmp_path / "images" / f"s{i}.png")
        row = {"stimulus_id": f"s{i}", "path": f"images/s{i}.png", "source": source, "model": model,
               "class_label": "a", "guidance": w, "width": 8, "height": 8}
        rows.append({k: v for k, v in row.items() if k != drop})
    (tmp_path / "manifest.json").write_text(json.dumps({"version": 1, "stimuli": rows}))
    with (tmp_path / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, [c for c in COLUMNS if c != drop])
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    return tmp_path


@pytest.mark.parametrize("name", ["manifest.json", "manifest.csv"])
def test_reads_json_and_csv(tmp_path: Path, name: str) -> None:
    stim = read_stimuli(_folder(tmp_path) / name)
    assert list(stim.table["stimulus_id"]) == ["s0", "s1"]
    assert stim.table["guidance"].iloc[0] == 1.0 and np.isnan(stim.table["guidance"].iloc[1])
    assert tuple(stim.images.shape) == (2, 1, 8, 8)
    assert stim.images[0, 0, 0].eq(1.0).all() and stim.images[0, 0, 1].eq(-1.0).all()  # ink = +1


@pytest.mark.parametrize("drop", ["guidance", "class_label"])
def test_missing_column_names_it(tmp_path: Path, drop: str) -> None:
    with pytest.raises(ValueError, match=drop):
        read_stimuli(_folder(tmp_path, drop) / "manifest.json")


def test_missing_image_names_the_stimulus(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "images" / "s1.png").unlink()
    with pytest.raises(FileNotFoundError, match="s1"):
        read_stimuli(folder / "manifest.json")
