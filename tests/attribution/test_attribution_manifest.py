"""Stimulus PNGs reach the attribution CLI exactly as they reach the data loaders."""

import numpy as np
import torch
from PIL import Image

from models.attribution.manifest import load_images
from models.data.preprocess import load_stimulus, resize_unit, to_model_range


def _write(tmp_path, name, arr):
    Image.fromarray(arr).save(tmp_path / name)
    return {"stimulus_id": name, "path": name}


def test_load_images_resizes_like_the_data_loader(tmp_path):
    rng = np.random.default_rng(0)
    rows = [_write(tmp_path, f"s{i}.png", rng.integers(0, 256, (28, 28), dtype=np.uint8)) for i in range(2)]
    rows.append(_write(tmp_path, "small.png", rng.integers(0, 256, (8, 8), dtype=np.uint8)))
    x = load_images(tmp_path, rows, size=16)
    assert x.shape == (3, 1, 16, 16)
    for row, img in zip(rows, x, strict=True):
        with Image.open(tmp_path / row["path"]) as im:
            arr = np.asarray(im.convert("L"))
        expected = to_model_range(resize_unit(1.0 - arr.astype(np.float32) / 255.0, 16))
        assert torch.allclose(img[0], torch.from_numpy(expected), atol=1e-6)
        assert torch.equal(img, load_stimulus(tmp_path / row["path"], 16))


def test_load_images_keeps_the_png_size_without_a_model_size(tmp_path):
    arr = np.full((12, 12), 255, dtype=np.uint8)
    arr[3:9, 5] = 0  # a black stroke on white
    x = load_images(tmp_path, [_write(tmp_path, "a.png", arr)])
    assert x.shape == (1, 1, 12, 12)
    assert x[0, 0, 3:9, 5].eq(1.0).all() and x[0, 0, 0, 0] == -1.0
