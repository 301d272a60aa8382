"""`python -m models classifier KIND`: each kind trains, saves a loadable checkpoint and prints a
JSON summary; options from a TOML config; one-line errors naming the option."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from models.classifiers import cli
from models.classifiers.feedback import FeedbackClassifier
from models.classifiers.store import load_classifier
from models.data import load_dataset
from models.data.preprocess import tensor_to_png_array


@pytest.fixture(scope="module")
def fake_manifest(tmp_path_factory):
    """A manifest of 'model samples' that are digits with shuffled pixels (PNG, black on white)."""
    base = tmp_path_factory.mktemp("fakes")
    (base / "images").mkdir()
    data = load_dataset("digits10", size=8)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for i in range(60):
        x = data.images[i].flatten()[torch.randperm(64, generator=gen)].view(1, 8, 8)
        Image.fromarray(tensor_to_png_array(x)).save(base / "images" / f"s{i}.png")
        rows.append({"stimulus_id": f"m1-s{i}", "path": f"images/s{i}.png", "source": "model", "model": "m1",
                     "class_label": data.class_names[int(data.labels[i])]})
    with (base / "manifest.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return base / "manifest.csv"


def _run(capsys, *argv) -> dict:
    rc = cli.main([*argv, "--device", "cpu"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


@pytest.mark.slow
def test_realfake_with_sweep(capsys, tmp_path, fake_manifest):
    summary = _run(capsys, "realfake", "--data", "digits10", "--size", "8", "--fake-manifest", str(fake_manifest),
                   "--sweep", "0.5,1", "--epochs", "2", "--out", str(tmp_path / "rf.pt"))
    assert [p["fraction"] for p in summary["sweep"]] == [0.5, 1.0]
    net, cfg, _meta = load_classifier(tmp_path / "rf.pt", device="cpu")
    assert cfg["kind"] == "realfake_classifier" and cfg["class_names"] == ["real", "fake"]
    assert net(torch.zeros(1, 1, 8, 8)).shape == (1, 2)


@pytest.mark.slow
def test_protonet_simclr_feedback(capsys, tmp_path):
    _run(capsys, "protonet", "--data", "digits", "--size", "8", "--heldout-classes", "10", "--episodes", "5",
         "--n-way", "5", "--out", str(tmp_path / "p.pt"))
    _net, cfg, meta = load_classifier(tmp_path / "p.pt", device="cpu")
    assert cfg["kind"] == "protonet" and len(meta["split"]["heldout_classes"]) == 10
    _run(capsys, "simclr", "--data", "digits10", "--size", "8", "--epochs", "1", "--out", str(tmp_path / "s.pt"))
    net, cfg, _meta = load_classifier(tmp_path / "s.pt", device="cpu")
    assert net.features(torch.zeros(2, 1, 8, 8)).shape == (2, 64)
    _run(capsys, "feedback", "--data", "digits10", "--size", "8", "--epochs", "1", "--out", str(tmp_path / "f.pt"))
    answers = FeedbackClassifier.load(tmp_path / "f.pt").predict(np.ones((2, 8, 8), np.float32))
    assert len(answers) == 2 and answers[0][0].startswith("digit")


def test_config_file_gives_defaults_and_flags_win(capsys, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('data = "digits10"\nsize = 8\nepochs = 1\narch = "lenet"\n')
    summary = _run(capsys, "nway", "--config", str(cfg), "--arch", "conv4", "--out", str(tmp_path / "n.pt"))
    _net, stored, _meta = load_classifier(summary["checkpoint"], device="cpu")
    assert stored["arch"] == "conv4" and stored["size"] == 8 and len(stored["class_names"]) == 10


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["nway", "--size", "8"], "--out"),
        (["realfake", "--size", "8", "--out", "x.pt"], "--fake-manifest"),
        (["nway", "--threshold", "dark", "--out", "x.pt"], "--threshold"),
        (["nway", "--data", "mnist", "--out", "x.pt"], "data.dataset"),
        (["protonet", "--size", "8", "--within-alphabet", "1.5", "--out", "x.pt"], "--within-alphabet"),
        (["protonet", "--size", "8", "--test-shift", "5", "--out", "x.pt"], "--test-shift"),
        # the digits' classes have no alphabets to draw an episode from
        (["protonet", "--size", "8", "--within-alphabet", "0.5", "--episodes", "2", "--out", "x.pt"],
         "--within-alphabet: no alphabet of digits"),
    ],
)
def test_errors_name_the_option(capsys, argv, field):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err and err.count("\n") == 1


def test_unknown_config_key(capsys, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("epochz = 3\n")
    assert cli.main(["nway", "--config", str(cfg), "--out", str(tmp_path / "x.pt")]) == 2
    assert "epochz" in capsys.readouterr().err


def test_protonet_shows_its_progress_and_loss_unless_told_not_to(capsys, tmp_path):
    argv = ["protonet", "--data", "digits", "--size", "8", "--heldout-classes", "10", "--episodes", "25",
            "--n-way", "5", "--out", str(tmp_path / "p.pt"), "--device", "cpu"]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "protonet" in err and "25/25" in err and "loss=" in err
    assert cli.main([*argv, "--no-progress"]) == 0
    assert "protonet" not in capsys.readouterr().err
