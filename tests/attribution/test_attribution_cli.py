"""`python -m models attribute` end to end on a tiny trained diffusion model and classifier:
the section 4 layout, shards that merge to the unsharded maps, the sampling-path check, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import cli as models_cli
from models.attribution import cli

pytestmark = pytest.mark.slow  # trains a tiny diffusion model and a classifier

TINY = """name = "cfgdm"
seed = 0
[data]
dataset = "digits10"
size = 8
heldout_classes = 2
max_per_class = 12
[model]
context = "exemplar"
n_feat = 4
[diffusion]
T = 20
[training]
steps = 3
batch_size = 8
p_uncond = 0.1
log_every = 1
[sampling]
steps = 10
"""


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory):
    base = tmp_path_factory.mktemp("attr")
    (base / "cfgdm.toml").write_text(TINY)
    assert models_cli.main(["train", str(base / "cfgdm.toml"), "--out", str(base / "m"), "--device", "cpu", "--no-progress"]) == 0
    ckpt = base / "m" / "checkpoint.pt"
    assert models_cli.main(["sample", str(ckpt), "--out", str(base / "stim"), "--n-per-class", "2",
                            "--guidance", "0,1", "--real", "1", "--device", "cpu", "--no-progress"]) == 0
    clf = base / "nway.pt"
    assert models_cli.main(["classifier", "nway", "--data", "digits10", "--size", "8", "--epochs", "1",
                            "--device", "cpu", "--out", str(clf)]) == 0
    return base, ckpt, clf


def _index(folder: Path) -> dict:
    return json.loads((folder / "index.json").read_text())


def test_diffusion_maps_for_a_manifest(stimuli, capsys):
    base, ckpt, _clf = stimuli
    out = base / "maps"
    rc = cli.main(["--manifest", str(base / "stim"), "--checkpoint", str(ckpt), "--out", str(out),
                   "--n-draws", "1", "--n-timesteps", "3", "--n-steps", "4", "--batch-size", "3",
                   "--device", "cpu", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    manifest = json.loads((base / "stim" / "manifest.json").read_text())["stimuli"]
    all_ids = sorted(r["stimulus_id"] for r in manifest)
    model_ids = sorted(r["stimulus_id"] for r in manifest if r["source"] == "model")
    for method in cli.DIFFUSION_METHODS:
        index = _index(out / method)
        assert index["method"] == method and index["checkpoint"] == str(ckpt)
        expected = model_ids if method == "diffusion_score" else all_ids
        assert sorted(index["stimulus_ids"]) == expected, method
        for sid in expected:
            m = np.load(out / method / f"{sid}.npy")
            assert m.shape == (8, 8) and m.dtype == np.float32 and (m >= 0).all() and m.sum() > 0
    # the remade sampling path ends in the stimulus itself (binarised as the sampling CLI does)
    check = _index(out / "diffusion_score")["path_check_mismatch"]
    assert set(check) == set(model_ids)
    assert max(check.values()) <= 0.02, check
    real = [r["stimulus_id"] for r in manifest if r["source"] == "real"]
    assert set(_index(out / "diffusion_score")["skipped"]) == set(real)


def test_shards_merge_to_the_unsharded_maps(stimuli, capsys):
    base, _ckpt, clf = stimuli
    args = ["--manifest", str(base / "stim" / "manifest.csv"), "--checkpoint", str(clf),
            "--methods", "saliency,smoothgrad,integrated_gradients", "--n-steps", "8", "--nt-samples", "4",
            "--device", "cpu", "--no-progress", "--batch-size", "4"]
    assert cli.main([*args, "--out", str(base / "whole")]) == 0
    for i in range(3):
        assert cli.main([*args, "--out", str(base / "sharded"), "--shard", f"{i}/3"]) == 0
    with pytest.raises(FileNotFoundError):
        (base / "sharded" / "saliency" / "index.json").read_text()
    assert cli.main(["--merge", str(base / "sharded")]) == 0
    for method in ("saliency", "smoothgrad", "integrated_gradients"):
        whole, merged = _index(base / "whole" / method), _index(base / "sharded" / method)
        assert sorted(whole["stimulus_ids"]) == merged["stimulus_ids"]
        for sid in merged["stimulus_ids"]:
            np.testing.assert_allclose(np.load(base / "sharded" / method / f"{sid}.npy"),
                                       np.load(base / "whole" / method / f"{sid}.npy"), rtol=1e-4, atol=1e-7)
    capsys.readouterr()


def test_incomplete_shards_do_not_merge(stimuli, tmp_path, capsys):
    base, _ckpt, clf = stimuli
    assert cli.main(["--manifest", str(base / "stim"), "--checkpoint", str(clf), "--methods", "gradcam",
                     "--out", str(tmp_path), "--shard", "0/2", "--device", "cpu", "--no-progress"]) == 0
    assert cli.main(["--merge", str(tmp_path)]) == 2
    assert "merge" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "field"),
    [(["--methods", "diffusion_score"], "--methods"), (["--batch-size", "0"], "--batch-size")],
)
def test_bad_options_give_one_line_errors(stimuli, tmp_path, capsys, extra, field):
    base, _ckpt, clf = stimuli
    rc = cli.main(["--manifest", str(base / "stim"), "--checkpoint", str(clf), "--out", str(tmp_path),
                   "--device", "cpu", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and field in err and "Traceback" not in err


def test_missing_manifest_names_the_option(tmp_path, capsys):
    rc = cli.main(["--manifest", str(tmp_path / "nope"), "--checkpoint", str(tmp_path / "c.pt"), "--out", str(tmp_path)])
    assert rc == 2 and "checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("context", ["set", "class", "none"])
def test_other_context_modes_remake_their_samples(tmp_path, capsys, context):
    cfg = TINY.replace('context = "exemplar"', f'context = "{context}"').replace('name = "cfgdm"', f'name = "m{context}"')
    w = "1"
    if context == "none":  # no context dropout and no guidance without a context
        cfg, w = cfg.replace("p_uncond = 0.1", "p_uncond = 0.0"), "0"
    (tmp_path / "m.toml").write_text(cfg)
    assert models_cli.main(["train", str(tmp_path / "m.toml"), "--out", str(tmp_path / "m"), "--device", "cpu", "--no-progress"]) == 0
    ckpt = tmp_path / "m" / "checkpoint.pt"
    assert models_cli.main(["sample", str(ckpt), "--out", str(tmp_path / "stim"), "--n-per-class", "1",
                            "--guidance", w, "--real", "1", "--device", "cpu", "--no-progress"]) == 0
    rc = cli.main(["--manifest", str(tmp_path / "stim"), "--checkpoint", str(ckpt), "--out", str(tmp_path / "maps"),
                   "--methods", "diffusion_score,denoising_loss_ig", "--n-draws", "1", "--n-timesteps", "2",
                   "--n-steps", "3", "--device", "cpu", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    score = _index(tmp_path / "maps" / "diffusion_score")
    assert score["stimulus_ids"] and max(score["path_check_mismatch"].values()) <= 0.02
    assert _index(tmp_path / "maps" / "denoising_loss_ig")["stimulus_ids"]


def test_unreadable_stimulus_names_the_path(stimuli, tmp_path, capsys):
    _base, _ckpt, clf = stimuli
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "manifest.csv").write_text("stimulus_id,path,source,class_label\na,bad.png,real,digit1\n")
    rc = cli.main(["--manifest", str(tmp_path), "--checkpoint", str(clf), "--out", str(tmp_path / "m"),
                   "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: path:") and "Traceback" not in err
