"""Data set loaders on fixtures written here and on the real Omniglot zips; one-shot splits."""

import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from models.data import apply_split, load_dataset, one_shot_split
from models.data.preprocess import (
    load_stimulus,
    png_array_to_tensor,
    preprocess,
    tensor_to_png_array,
)


def _glyph(k: int, size: int = 105, ink_black: bool = True) -> np.ndarray:
    """A black-on-white (or white-on-black) test glyph: a bar whose position depends on k."""
    img = np.zeros((size, size), np.uint8)
    lo = 10 + 15 * k
    img[lo : lo + 20, 20:85] = 255
    return 255 - img if ink_black else img


def _save_png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _check(ds, n, n_classes, size):
    assert len(ds) == n and len(ds.class_names) == n_classes
    assert ds.images.shape == (n, 1, size, size) and ds.images.dtype == torch.float32
    assert set(torch.unique(ds.images).tolist()) <= {-1.0, 1.0}
    assert len(set(ds.ids)) == n


def test_digits_embedded_with_class_augmentation():
    ds = load_dataset("digits", None, 16)
    _check(ds, 4 * 1797, 40, 16)
    base = ds.ids.index("digits/digit3/0003")
    rot = ds.ids.index("digits/digit3_rot90/0003")
    assert torch.equal(ds.images[rot, 0], torch.rot90(ds.images[base, 0], 1))
    assert ds.class_names[int(ds.labels[rot])] == "digit3_rot90"
    # ink is +1: a digit covers a minority of the 16x16 grid
    assert float((ds.images == 1).float().mean()) < 0.5
    plain = load_dataset("digits10", None, 8)
    _check(plain, 1797, 10, 8)


def test_folder_layout(tmp_path):
    for c, name in enumerate(["cat", "dog"]):
        for i in range(3):
            _save_png(tmp_path / "imgs" / name / f"{i}.png", _glyph(c + i % 2))
    ds = load_dataset("folder", tmp_path / "imgs", 20)
    _check(ds, 6, 2, 20)
    assert ds.name == "folder:imgs" and ds.class_names == ["cat", "dog"]
    assert ds.ids[0] == "folder:imgs/cat/0"
    # black-on-white drawings are inverted: ink (+1) is the bar, background -1
    assert float((ds.images[0] == 1).float().mean()) < 0.3


def test_omniglot_folder_and_zip_give_the_same_data(tmp_path):
    root = tmp_path / "omni"
    for a in ["Alpha", "Beta"]:
        for c in ["character01", "character02"]:
            for d in range(2):
                _save_png(root / "images_background" / a / c / f"0{d}_{c[-1]}.png", _glyph(d + int(c[-1])))
    from_folder = load_dataset("omniglot", root, 28)
    _check(from_folder, 8, 4, 28)
    assert from_folder.class_names[0] == "Alpha/character01"
    zdir = tmp_path / "zips"
    zdir.mkdir()
    with zipfile.ZipFile(zdir / "images_background_x.zip", "w") as zf:
        for p in sorted(root.rglob("*.png")):
            zf.write(p, p.relative_to(root).as_posix())
    from_zip = load_dataset("omniglot", zdir, 28)
    assert from_zip.ids == from_folder.ids and torch.equal(from_zip.images, from_folder.images)
    one_zip = load_dataset("omniglot", zdir / "images_background_x.zip", 28)
    assert one_zip.ids == from_folder.ids


def test_quickdraw_npy_and_ndjson(tmp_path):
    bitmaps = np.stack([_glyph(k, 28, ink_black=False) for k in range(3)]).reshape(3, 784)
    np.save(tmp_path / "full_numpy_bitmap_ladder.npy", bitmaps)
    records = [
        {"word": "line", "key_id": "111", "drawing": [[[10, 200], [128, 128]]]},
        {"word": "line", "key_id": "222", "drawing": [[[128, 128], [10, 250]], [[30], [30]]]},
    ]
    (tmp_path / "line.ndjson").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    ds = load_dataset("quickdraw", tmp_path, 28)
    _check(ds, 5, 2, 28)
    assert ds.class_names == ["ladder", "line"]
    assert "quickdraw/line/111" in ds.ids and "quickdraw/ladder/npy000000" in ds.ids
    horizontal = ds.images[ds.ids.index("quickdraw/line/111"), 0]
    rows_with_ink = torch.nonzero((horizontal == 1).any(dim=1)).flatten()
    assert 0 < len(rows_with_ink) <= 4 and abs(float(rows_with_ink.float().mean()) - 14) <= 2
    capped = load_dataset("quickdraw", tmp_path, 28, max_per_class=1)
    assert len(capped) == 2


def test_quickdraw_bad_record_names_file(tmp_path):
    (tmp_path / "x.ndjson").write_text('{"word": "x"}\n')
    with pytest.raises(ValueError, match=r"data.root: x.ndjson line 1"):
        load_dataset("quickdraw", tmp_path, 28)


def test_real_omniglot_zips(omniglot_dir):
    ds = load_dataset("omniglot", omniglot_dir, 28)
    assert len(ds) > 4000 and len(ds.class_names) > 200
    assert all(c.count("/") == 1 and c.split("/")[1].startswith("character") for c in ds.class_names)
    counts = torch.bincount(ds.labels)
    assert int(counts.max()) == 20  # 20 drawers per character
    ink = (ds.images == 1).float().mean()
    assert 0.03 < float(ink) < 0.3  # strokes inverted to ink = +1 and kept after shrinking


@pytest.mark.parametrize(
    "spec, root, match",
    [("imagenet", None, "data.dataset"), ("omniglot", None, "data.root"), ("folder", "/nonexistent/x", "data.root")],
)
def test_loader_errors_name_the_field(spec, root, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        load_dataset(spec, root, 16)


def test_one_shot_split_is_seeded_recorded_and_reproducible():
    ds = load_dataset("digits", None, 8)
    train, held, rec = one_shot_split(ds, 10, seed=3)
    assert len(held.class_names) == 10 and len(train.class_names) == 30
    assert not set(held.class_names) & set(train.class_names)
    assert len(train) + len(held) == len(ds)
    assert set(held.ids).isdisjoint(train.ids)
    for cls in held.class_names:
        ids = sorted(i for i, lab in zip(held.ids, held.labels.tolist(), strict=True)
                     if held.class_names[lab] == cls)
        assert rec["exemplars"][cls] == ids[0]
    again = one_shot_split(ds, 10, seed=3)[2]
    assert again == json.loads(json.dumps(rec))
    assert one_shot_split(ds, 10, seed=4)[2]["heldout_classes"] != rec["heldout_classes"]
    t2, h2 = apply_split(ds, rec)
    assert t2.ids == train.ids and h2.ids == held.ids
    seeded = one_shot_split(ds, 10, seed=3, exemplar_rule="seeded")[2]
    assert seeded["exemplar_rule"] == "seeded" and seeded["exemplars"] != rec["exemplars"]
    with pytest.raises(ValueError, match="data.heldout_classes"):
        one_shot_split(ds, 40, seed=0)


def test_png_round_trip_and_preprocess(tmp_path):
    x = torch.where(torch.rand(1, 9, 9) > 0.5, 1.0, -1.0)
    arr = tensor_to_png_array(x)
    assert arr.dtype == np.uint8 and arr[x[0] == 1].max() == 0  # ink is black in the PNG
    assert torch.equal(png_array_to_tensor(arr), x)
    Image.fromarray(arr).save(tmp_path / "s.png")
    assert torch.equal(load_stimulus(str(tmp_path / "s.png")), x)
    out = preprocess(_glyph(0), 21)
    assert out.shape == (21, 21) and set(np.unique(out)) == {-1.0, 1.0}


def test_digits_reader_matches_sklearn():
    from sklearn.datasets import load_digits as sk_load_digits

    from models.data.digits import read_sklearn_digits

    images, targets = read_sklearn_digits()
    ref = sk_load_digits()
    assert np.array_equal(images, ref.images) and np.array_equal(targets, ref.target)
