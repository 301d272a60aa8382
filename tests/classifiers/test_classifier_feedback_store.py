"""The ClickMe feedback classifier's contract (study/feedback.py calls it) and classifier
checkpoints of every kind."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError
from models.classifiers.backbones import build_classifier
from models.classifiers.feedback import FeedbackClassifier, random_reveal
from models.classifiers.protonet import ProtoNet
from models.classifiers.simclr import SimCLREncoder
from models.classifiers.store import load_classifier, save_classifier
from models.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits10", size=8, threshold=None)


@pytest.fixture(scope="module")
def feedback(digits, tmp_path_factory):
    clf = FeedbackClassifier.train(digits.images[:1200], digits.labels[:1200], digits.class_names,
                                   epochs=6, device="cpu")
    path = clf.save(tmp_path_factory.mktemp("fb") / "feedback.pt", {"note": "test"})
    return FeedbackClassifier.load(path), digits


def png_polarity(images: torch.Tensor) -> np.ndarray:
    """Model-range (N, 1, H, W), ink = +1 -> what the web app reads from a PNG: (N, H, W) in
    [0, 1], black ink on white."""
    return (1.0 - (images[:, 0] + 1.0) / 2.0).numpy().astype(np.float32)


def test_random_reveal_keeps_discs_and_fills_the_rest():
    unit = torch.full((50, 1, 16, 16), 0.5)
    out = random_reveal(unit, torch.Generator().manual_seed(0), fill=0.0, p_full=0.0)
    assert set(out.unique().tolist()) <= {0.0, 0.5}
    share = (out == 0.5).float().mean((1, 2, 3))
    assert (share > 0).all() and (share < 1).all()


@pytest.mark.slow
def test_contract_load_and_predict(feedback):
    clf, digits = feedback
    images = png_polarity(digits.images[1200:1400])
    answers = clf.predict(images)
    assert isinstance(answers, list) and len(answers) == 200
    for label, prob in answers:
        assert isinstance(label, str) and label in digits.class_names
        assert isinstance(prob, float) and 0.0 <= prob <= 1.0
    truth = [digits.class_names[i] for i in digits.labels[1200:1400]]
    assert np.mean([a[0] == t for a, t in zip(answers, truth, strict=True)]) > 0.6  # chance 0.1


@pytest.mark.slow
def test_revealing_more_helps(feedback):
    """The web app's own reveal (study.feedback) with a few bubbles vs the whole image."""
    from study.feedback import revealed_image

    clf, digits = feedback
    images = png_polarity(digits.images[1200:1400])
    truth = [digits.class_names[i] for i in digits.labels[1200:1400]]
    corner = [revealed_image(im, [(0.1, 0.1)], 0.1)[None] for im in images]
    few = clf.predict(np.concatenate(corner))
    full = clf.predict(images)
    acc = [np.mean([a[0] == t for a, t in zip(ans, truth, strict=True)]) for ans in (few, full)]
    assert acc[1] > acc[0] + 0.3


@pytest.mark.slow
def test_predict_accepts_any_grid_and_is_fast_on_cpu(feedback):
    clf, digits = feedback
    one = png_polarity(digits.images[1200:1201])
    big = np.kron(one, np.ones((1, 32, 32), dtype=np.float32))  # the 256 px display size
    assert clf.predict(big)[0][0] == clf.predict(one)[0][0]
    start = time.perf_counter()
    for _ in range(20):
        clf.predict(big)
    print(f"feedback predict: {(time.perf_counter() - start) / 20 * 1e3:.2f} ms per 256 px image")


def test_predict_rejects_bad_arrays(feedback):
    clf, _digits = feedback
    for bad in (np.zeros((2, 2, 8, 8), np.float32), np.full((1, 8, 8), 2.0, np.float32),
                np.full((1, 8, 8), np.nan, np.float32), np.zeros((0, 8, 8), np.float32)):
        with pytest.raises(ValueError, match="images"):
            clf.predict(bad)


def test_loading_another_kind_as_feedback_fails(tmp_path):
    path = save_classifier(tmp_path / "p.pt", ProtoNet(), {"kind": "protonet"}, {})
    with pytest.raises(ValueError, match="feedback"):
        FeedbackClassifier.load(path)


@pytest.mark.parametrize(
    ("net", "config"),
    [
        (build_classifier("lenet", 3), {"kind": "nway_classifier", "class_names": ["a", "b", "c"]}),
        (build_classifier("resnet18", 2), {"kind": "realfake_classifier"}),
        (ProtoNet(hidden=16), {"kind": "protonet"}),
        (ProtoNet(hidden=16, test_shift=1), {"kind": "protonet"}),
        (SimCLREncoder(8, hidden=16), {"kind": "simclr"}),
    ],
)
def test_checkpoints_round_trip(tmp_path, net, config):
    net.eval()
    x = torch.randn(2, 1, 8, 8)
    path = save_classifier(tmp_path / "c.pt", net, config, {"acc": 0.5})
    loaded, cfg, meta = load_classifier(path, device="cpu")
    assert cfg["kind"] == config["kind"] and meta["acc"] == 0.5
    torch.testing.assert_close(loaded(x), net(x))
    if hasattr(net, "embed"):  # a critic keeps its test-time shifts
        torch.testing.assert_close(loaded.embed(x), net.embed(x))


def test_checkpoint_errors_name_the_field(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        save_classifier(tmp_path / "c.pt", ProtoNet(), {"kind": "unet"}, {})
    with pytest.raises(CheckpointError, match="checkpoint"):
        load_classifier(tmp_path / "missing.pt")


def test_generic_load_checkpoint_knows_classifier_kinds_once_they_are_registered(tmp_path):
    """models.checkpoint imports no plug-in: on its own it names the unknown kind and where it is
    registered; after importing models.classifiers.store, load_checkpoint builds a classifier."""
    import subprocess
    import sys

    from models.classifiers.backbones import build_classifier
    from models.classifiers.store import save_classifier

    net = build_classifier("lenet", n_classes=3)
    path = save_classifier(tmp_path / "c.pt", net, {"kind": "nway_classifier"}, {})
    load = (f"net, config, meta = load_checkpoint({str(path)!r}, device='cpu'); "
            "print(type(net).__name__, config['kind'])")
    alone = subprocess.run([sys.executable, "-c", f"from models.checkpoint import load_checkpoint; {load}"],
                           capture_output=True, text=True)
    assert alone.returncode != 0
    assert "unknown kind 'nway_classifier'" in alone.stderr and "models.classifiers.store" in alone.stderr
    registered = ("import models.classifiers.store; from models.checkpoint import load_checkpoint; "
                  f"{load}")
    out = subprocess.run([sys.executable, "-c", registered], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "nway_classifier"


def test_a_checkpoint_without_a_stored_fill_loads_with_the_training_default(tmp_path):
    import inspect

    from models.classifiers.feedback import DEFAULT_FILL

    trained_default = inspect.signature(FeedbackClassifier.train).parameters["fill"].default
    reveal_default = inspect.signature(random_reveal).parameters["fill"].default
    assert DEFAULT_FILL == trained_default == reveal_default == 0.5
    config = {"kind": "feedback_classifier", "arch": "lenet", "n_classes": 3, "size": 8,
              "class_names": ["a", "b", "c"]}
    path = save_classifier(tmp_path / "old.pt", build_classifier("lenet", 3, 1), config, {})
    assert FeedbackClassifier.load(path, device="cpu").fill == trained_default
    stored = save_classifier(tmp_path / "new.pt", build_classifier("lenet", 3, 1), {**config, "fill": 0.25}, {})
    assert FeedbackClassifier.load(stored, device="cpu").fill == 0.25
