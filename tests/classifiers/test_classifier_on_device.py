"""Classifiers on the device the run names (`--device`, cpu unless told; `make gpu-check` runs
these on CUDA): trained there they learn, and their outputs equal the CPU's for the same weights."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from models.classifiers.backbones import build_classifier
from models.classifiers.simclr import extract_features, train_simclr
from models.classifiers.training import accuracy, fit_classifier, predict_logits
from models.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits10", size=16, threshold=None)


def test_a_classifier_trained_on_the_device_learns_and_matches_the_cpu(torch_device, digits):
    torch.manual_seed(0)
    net = build_classifier("conv4", 10)  # convolutions and BatchNorm, trained in batch statistics
    train_x, train_y = digits.images[:600], digits.labels[:600]
    test_x, test_y = digits.images[600:800], digits.labels[600:800]
    fit_classifier(net, train_x, train_y, epochs=5, lr=3e-3, device=torch_device, seed=0)
    assert next(net.parameters()).device.type == torch_device.type
    assert accuracy(net, test_x, test_y, device=torch_device) > 0.85  # chance 0.1
    got = predict_logits(net, test_x, device=torch_device)
    ref = predict_logits(copy.deepcopy(net).cpu(), test_x, device="cpu")
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def test_simclr_trained_on_the_device_gives_the_cpus_features(torch_device, digits):
    net = train_simclr(digits.images[:256], epochs=1, batch_size=64, device=torch_device, seed=0)
    got = extract_features(net, digits.images[:64], device=torch_device)
    ref = extract_features(copy.deepcopy(net).cpu(), digits.images[:64], device="cpu")
    assert got.shape[0] == 64 and np.isfinite(got).all() and got.std(0).mean() > 0
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))
