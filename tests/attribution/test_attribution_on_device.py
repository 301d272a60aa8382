"""Attribution maps on the device the run names (`--device`, cpu unless told; `make gpu-check`
runs these on CUDA): each map equals the CPU's map of the same network and still finds the
region that carries the class."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from attribution_synthetic import N_CLASSES, TinyEps, mass_in_region, region_task
from torch import nn

from models.attribution import methods as M
from models.classifiers.backbones import build_classifier
from models.classifiers.training import accuracy, fit_classifier
from models.diffusion.schedule import make_schedule
from models.diffusion.unet import UNet

SCHEDULE = make_schedule("linear", 50)


def _close(got: np.ndarray, ref: np.ndarray, rtol: float = 1e-4) -> None:
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * float(np.abs(ref).max()))


@pytest.fixture(scope="module")
def batch():
    images, labels = region_task(6, seed=3)
    return images, labels % 2


@pytest.mark.parametrize("method", ["guidance_difference", "conditional_gain"])
def test_condition_contrasts_on_the_device_match_the_cpu_and_find_the_region(torch_device, batch, method):
    images, labels = batch
    fn = getattr(M, method)
    net = TinyEps().eval()
    ref = fn(copy.deepcopy(net), SCHEDULE, images, labels, n_draws=2, device="cpu")
    got = fn(net, SCHEDULE, images, labels, n_draws=2, device=torch_device)
    _close(got, ref)
    assert float(mass_in_region(got).min()) > 0.99  # TinyEps's class acts inside REGION only


def test_guidance_difference_of_a_unet_on_the_device_matches_the_cpu(torch_device, batch):
    images, labels = batch
    torch.manual_seed(0)
    net = UNet(16, 8, (1, 2), 1, "class", n_classes=2).eval()
    nn.init.normal_(net.conv_out.weight, std=0.1)
    ref = M.guidance_difference(copy.deepcopy(net), SCHEDULE, images, labels, n_draws=2, device="cpu")
    got = M.guidance_difference(net, SCHEDULE, images, labels, n_draws=2, device=torch_device)
    assert (ref > 0).mean() > 0.9  # the class embedding reaches nearly every pixel
    _close(got, ref, rtol=1e-3)


def test_diffusion_score_on_the_device_matches_the_cpu(torch_device, batch):
    _images, labels = batch
    kw = {"w": 2.0, "steps": 8, "seeds": list(range(6)), "image_shape": (1, 16, 16)}
    net = TinyEps().eval()
    ref_maps, ref_x = M.diffusion_score(copy.deepcopy(net), SCHEDULE, labels, 6, device="cpu", **kw)
    maps, x = M.diffusion_score(net, SCHEDULE, labels, 6, device=torch_device, **kw)
    torch.testing.assert_close(x.cpu(), ref_x.cpu(), rtol=0, atol=1e-4)
    _close(maps, ref_maps, rtol=1e-3)
    assert float(mass_in_region(maps).mean()) > 0.6


@pytest.fixture(scope="module")
def classifier_on_device(torch_device):
    """A LeNet trained on the device on the region task, and held-out images."""
    torch.manual_seed(0)
    images, labels = region_task(1200, seed=0)
    net = build_classifier("lenet", N_CLASSES)
    fit_classifier(net, images, labels, epochs=10, weight_decay=1e-3, device=torch_device, seed=0)
    test_x, test_y = region_task(48, seed=1)
    return net, test_x, test_y


CLASSIFIER_METHODS = ["saliency", "integrated_gradients", "gradcam", "occlusion"]


def test_a_classifier_trained_on_the_device_learns_the_task(torch_device, classifier_on_device):
    net, x, y = classifier_on_device
    assert next(net.parameters()).device.type == torch_device.type
    assert accuracy(net, x, y, device=torch_device) > 0.95


@pytest.mark.parametrize("method", CLASSIFIER_METHODS)
def test_classifier_maps_on_the_device_match_the_cpu(torch_device, classifier_on_device, method):
    net, x, y = classifier_on_device
    fn = getattr(M, method)
    got = fn(net, x, y, device=torch_device)
    ref = fn(copy.deepcopy(net).cpu(), x, y, device="cpu")
    assert got.shape == (48, 16, 16) and (got >= 0).all()
    _close(got, ref, rtol=1e-3)
    assert float(mass_in_region(got).mean()) > 0.45  # a blind map would hold about 0.25 there
