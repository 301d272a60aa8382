"""Classifier maps (Captum) on a task whose class lives in one known region."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from attribution_synthetic import N_CLASSES, mass_in_region, region_task

from models.attribution import methods as M
from models.classifiers.backbones import build_classifier
from models.classifiers.training import accuracy, fit_classifier

METHODS = {
    "saliency": M.saliency,
    "integrated_gradients": M.integrated_gradients,
    "smoothgrad": M.smoothgrad,
    "gradcam": M.gradcam,
    "occlusion": M.occlusion,
}

pytestmark = pytest.mark.slow  # trains a small classifier once per module


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    images, labels = region_task(1200, seed=0)
    net = build_classifier("lenet", N_CLASSES)
    fit_classifier(net, images, labels, epochs=10, weight_decay=1e-3, device="cpu", seed=0)
    test_x, test_y = region_task(48, seed=1)
    assert accuracy(net, test_x, test_y, device="cpu") > 0.95
    return net, test_x, test_y


@pytest.fixture(scope="module")
def maps(trained):
    net, x, y = trained
    return {name: fn(net, x, y, device="cpu") for name, fn in METHODS.items()}


@pytest.mark.parametrize("name", list(METHODS))
def test_maps_are_nonnegative_float32_on_the_image_grid(maps, trained, name):
    m = maps[name]
    assert m.shape == (48, 16, 16) and m.dtype == np.float32
    assert np.isfinite(m).all() and (m >= 0).all() and (m.reshape(48, -1).sum(1) > 0).all()


@pytest.mark.parametrize("name", [m for m in METHODS if m != "gradcam"])
def test_most_mass_lies_in_the_region_that_carries_the_class(maps, name):
    # the region is a quarter of the image: a map blind to it would hold about 25% there
    share = mass_in_region(maps[name])
    assert float(share.mean()) > 0.55, f"{name}: mean share {float(share.mean()):.2f}"


def test_gradcam_mass_concentrates_in_the_region(maps):
    """Grad-CAM weighs each channel by one global gradient mean, so it cannot confine a rule
    that holds in one place only when the same features fire on the clutter elsewhere; it still
    puts about half of its mass in the quarter-image region (measured 0.53; others 0.65-0.9)."""
    share = mass_in_region(maps["gradcam"])
    assert float(share.mean()) > 0.45, f"gradcam: mean share {float(share.mean()):.2f}"


@pytest.mark.parametrize("name", list(METHODS))
def test_maps_change_when_the_weights_are_reinitialised(maps, trained, name):
    """Model-parameter randomisation check (Adebayo et al. 2018)."""
    _net, x, y = trained
    torch.manual_seed(123)
    random_net = build_classifier("lenet", N_CLASSES)
    random_maps = METHODS[name](random_net, x, y, device="cpu")
    a = maps[name] / maps[name].sum((1, 2), keepdims=True)
    b = random_maps / np.maximum(random_maps.sum((1, 2), keepdims=True), 1e-12)
    assert float(np.abs(a - b).sum((1, 2)).mean()) > 0.4  # total-variation distance x2
    drop = float(mass_in_region(maps[name]).mean() - mass_in_region(random_maps).mean())
    assert drop > 0.15, f"{name}: the region share only fell by {drop:.2f}"


@pytest.mark.parametrize("name", ["saliency", "integrated_gradients", "gradcam", "occlusion"])
def test_batched_maps_equal_per_image_maps(maps, trained, name):
    net, x, y = trained
    single = np.concatenate([METHODS[name](net, x[i : i + 1], y[i : i + 1], device="cpu") for i in range(6)])
    np.testing.assert_allclose(maps[name][:6], single, rtol=1e-4, atol=1e-6 * float(single.max()))


def test_smoothgrad_batched_and_single_agree_up_to_noise(maps, trained):
    # noise is drawn for the whole batch, so only the expectation is shared
    net, x, y = trained
    single = np.concatenate([M.smoothgrad(net, x[i : i + 1], y[i : i + 1], nt_samples=64, device="cpu") for i in range(4)])
    batched = M.smoothgrad(net, x[:4], y[:4], nt_samples=64, device="cpu")
    for a, b in zip(single, batched, strict=True):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.8


def test_smoothgrad_is_reproducible_and_leaves_the_global_rng_alone(trained):
    net, x, y = trained
    torch.manual_seed(7)
    before = torch.rand(1)
    torch.manual_seed(7)
    a = M.smoothgrad(net, x[:3], y[:3], seed=5, device="cpu")
    after = torch.rand(1)
    b = M.smoothgrad(net, x[:3], y[:3], seed=5, device="cpu")
    np.testing.assert_array_equal(a, b)
    assert torch.equal(before, after)


def test_integrated_gradients_completeness(trained):
    """Signed attributions sum to f(x) - f(baseline) for the target logit."""
    net, x, y = trained
    attr = M.integrated_gradients(net, x[:8], y[:8], n_steps=128, signed=True, device="cpu")
    with torch.no_grad():
        fx = net(x[:8]).gather(1, y[:8, None]).flatten()
        fb = net(-torch.ones_like(x[:8])).gather(1, y[:8, None]).flatten()
    np.testing.assert_allclose(attr.reshape(8, -1).sum(1), (fx - fb).numpy(), rtol=0.03, atol=0.02)


def test_integrated_gradients_internal_batch_size_gives_the_same_maps(trained):
    net, x, y = trained
    full = M.integrated_gradients(net, x[:5], y[:5], device="cpu")
    chunked = M.integrated_gradients(net, x[:5], y[:5], internal_batch_size=7, device="cpu")
    np.testing.assert_allclose(full, chunked, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("arch", ["conv4", "resnet18"])
def test_every_method_runs_on_the_other_architectures(arch):
    torch.manual_seed(0)
    net = build_classifier(arch, 3)
    x = torch.rand(2, 1, 12, 12) * 2 - 1
    for name, fn in METHODS.items():
        kwargs = {"nt_samples": 2} if name == "smoothgrad" else {"n_steps": 4} if name == "integrated_gradients" else {}
        m = fn(net, x, 1, device="cpu", **kwargs)
        assert m.shape == (2, 12, 12) and (m >= 0).all(), name


def test_bad_inputs_name_the_field(trained):
    net, x, y = trained
    with pytest.raises(ValueError, match="images"):
        M.saliency(net, x[0], y[:1], device="cpu")
    with pytest.raises(ValueError, match="target"):
        M.saliency(net, x[:3], y[:2], device="cpu")
    with pytest.raises(ValueError, match="window"):
        M.occlusion(net, x[:1], y[:1], window=40, device="cpu")
