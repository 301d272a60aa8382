"""Backbones, real-vs-fake, N-way and SimCLR on the embedded digits (8 px, tiny runs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.classifiers.backbones import ARCHITECTURES, build_classifier, gradcam_layer
from models.classifiers.nway import class_agreement, names_to_indices, train_nway
from models.classifiers.realfake import fraction_sweep, realfake_set, train_realfake
from models.classifiers.simclr import extract_features, nt_xent, train_simclr
from models.classifiers.training import accuracy
from models.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits10", size=8, threshold=None)


def easy_fakes(real: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """'Fakes' any detector should catch: each real image's pixels shuffled (same ink, no shape)."""
    gen = torch.Generator().manual_seed(seed)
    flat = real.flatten(1)
    perm = torch.stack([torch.randperm(flat.shape[1], generator=gen) for _ in range(len(flat))])
    return flat.gather(1, perm).view_as(real)


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("size", [8, 16, 28])
def test_backbones_give_logits_and_a_spatial_gradcam_layer(arch, size):
    net = build_classifier(arch, 5).eval()
    seen = {}
    gradcam_layer(net).register_forward_hook(lambda _m, _i, out: seen.setdefault("out", out))
    out = net(torch.zeros(3, 1, size, size))
    assert out.shape == (3, 5)
    assert seen["out"].ndim == 4 and seen["out"].shape[0] == 3
    assert net.arch == {"arch": arch, "n_classes": 5, "in_channels": 1}


def test_unknown_architecture_names_the_field():
    with pytest.raises(ValueError, match="arch"):
        build_classifier("vgg", 2)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["lenet", "resnet18"])
def test_realfake_classifiers_beat_chance_on_an_easy_set(digits, arch):
    real = digits.images[:240]
    train_fake, test_fake = easy_fakes(real, 0), easy_fakes(digits.images[240:360], 1)
    net = train_realfake(real, train_fake, arch=arch, epochs=3 if arch == "lenet" else 1, device="cpu")
    images, labels = realfake_set(digits.images[240:360], test_fake)
    assert accuracy(net, images, labels, device="cpu") > 0.85


def test_realfake_set_labels_and_validation(digits):
    real = digits.images[:5]
    images, labels = realfake_set(real, [real[:2], real[:3]])
    assert images.shape[0] == 10 and labels.tolist() == [0] * 5 + [1] * 5
    with pytest.raises(ValueError, match="fakes"):
        realfake_set(real, torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="fakes"):
        realfake_set(real, [])


@pytest.mark.slow
def test_fraction_sweep_reports_growing_training_sets(digits):
    real = digits.images[:200]
    points = fraction_sweep(real, easy_fakes(real), fractions=(0.05, 1.0), epochs=3, device="cpu")
    assert [p.fraction for p in points] == [0.05, 1.0]
    assert points[0].n_train < points[1].n_train == 280  # 70% of 400
    assert all(0.0 <= p.train_accuracy <= 1.0 and 0.0 <= p.test_accuracy <= 1.0 for p in points)
    assert points[1].test_accuracy > 0.85
    with pytest.raises(ValueError, match="fractions"):
        fraction_sweep(real, easy_fakes(real), fractions=(0.0,))


@pytest.mark.slow
def test_nway_classifier_recognises_held_out_digits(digits):
    idx = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    train, test = idx[:900], idx[900:1200]
    net = train_nway(digits.images[train], digits.labels[train], 10, arch="conv4", epochs=4, device="cpu")
    result = class_agreement(net, digits.images[test], digits.labels[test], device="cpu")
    assert result["accuracy"] > 0.8 and len(result["probability"]) == 300
    wrong = class_agreement(net, digits.images[test], (digits.labels[test] + 1) % 10, device="cpu")
    assert wrong["accuracy"] < 0.1


def test_names_to_indices(digits):
    assert names_to_indices(["digit3", "digit0"], digits.class_names).tolist() == [3, 0]
    with pytest.raises(ValueError, match="class_label"):
        names_to_indices(["digit3", "cat"], digits.class_names)


def test_nt_xent_matches_a_hand_computed_loss():
    gen = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1).double()
    losses = []
    for i in range(8):
        pos = (i + 4) % 8
        sims = {j: float(z[i] @ z[j]) / 0.5 for j in range(8) if j != i}
        losses.append(-sims[pos] + np.log(sum(np.exp(v) for v in sims.values())))
    assert float(nt_xent(z1, z2, 0.5)) == pytest.approx(np.mean(losses), rel=1e-5)
    assert float(nt_xent(z1, z1 + 1e-3, 0.5)) < float(nt_xent(z1, z2, 0.5))


@pytest.mark.slow
def test_simclr_features_separate_classes(digits):
    """1-nearest-neighbour class accuracy in the SimCLR feature space beats chance (10%) widely."""
    net = train_simclr(digits.images[:600], epochs=3, batch_size=100, device="cpu")
    feats = extract_features(net, digits.images[:600], device="cpu")
    assert feats.shape == (600, 64)
    d = ((feats[:, None] - feats[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    labels = digits.labels[:600].numpy()
    assert (labels[d.argmin(1)] == labels).mean() > 0.5
