"""Real-vs-fake classifiers (Facade study): a LeNet-style CNN or a ResNet-18 trained from
scratch on real images (label 0) against one model's or all models' samples (label 1), and the
training-data-fraction sweep (train and test accuracy as the share of training data grows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from models.classifiers.backbones import build_classifier
from models.classifiers.training import accuracy, check_images, fit_classifier, random_shift

CLASS_NAMES = ("real", "fake")


def realfake_set(
    real: torch.Tensor, fakes: torch.Tensor | Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack real images (label 0) and the samples of one or several models (label 1).
    Shapes: real (N_r, C, H, W), each fake (N_f, C, H, W) on the same grid; returns (images, labels)."""
    fakes = [fakes] if isinstance(fakes, torch.Tensor) else list(fakes)
    if not fakes:
        raise ValueError("fakes: at least one tensor of model samples is needed")
    check_images(real)
    for f in fakes:
        check_images(f)
        if f.shape[1:] != real.shape[1:]:
            raise ValueError(
                f"fakes: sample shape {tuple(f.shape[1:])} differs from real {tuple(real.shape[1:])}"
            )
    fake = torch.cat(fakes)
    images = torch.cat([real, fake]).float()
    labels = torch.cat([torch.zeros(len(real), dtype=torch.long), torch.ones(len(fake), dtype=torch.long)])
    return images, labels


def train_realfake(
    real: torch.Tensor,
    fakes: torch.Tensor | Sequence[torch.Tensor],
    *,
    arch: str = "lenet",
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    device: torch.device | str | None = None,
    seed: int = 0,
    progress: bool = False,
) -> nn.Module:
    """Train a real-vs-fake classifier (logit 0 = real, 1 = fake) and return it in eval mode."""
    images, labels = realfake_set(real, fakes)
    torch.manual_seed(seed)
    net = build_classifier(arch, 2, images.shape[1])
    fit_classifier(
        net, images, labels, epochs=epochs, batch_size=batch_size, lr=lr, device=device,
        seed=seed, augment=random_shift, progress=progress,
    )
    return net


@dataclass(frozen=True)
class SweepPoint:
    """One point of the training-data-fraction sweep."""

    fraction: float
    n_train: int
    train_accuracy: float
    test_accuracy: float

    def as_dict(self) -> dict:
        return asdict(self)


def stratified_split(
    labels: torch.Tensor, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, test) with `test_fraction` of every label in the test part."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction: must be in (0, 1), got {test_fraction}")
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for value in labels.unique():
        idx = torch.nonzero(labels == value).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        k = max(1, round(test_fraction * len(idx)))
        test.append(idx[:k])
        train.append(idx[k:])
    return torch.cat(train), torch.cat(test)


def fraction_sweep(
    real: torch.Tensor,
    fakes: torch.Tensor | Sequence[torch.Tensor],
    *,
    fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0),
    arch: str = "lenet",
    test_fraction: float = 0.3,
    epochs: int = 10,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> list[SweepPoint]:
    """Train one classifier per fraction of a fixed training part (nested random subsets, same
    seed) and measure train and test accuracy on a fixed held-out part (Facade study, Fig. 2)."""
    if not fractions or any(not 0.0 < f <= 1.0 for f in fractions):
        raise ValueError(f"fractions: each must be in (0, 1], got {list(fractions)}")
    images, labels = realfake_set(real, fakes)
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    train_idx = train_idx[torch.randperm(len(train_idx), generator=gen)]
    points = []
    for frac in sorted(fractions):
        idx = train_idx[: max(2, round(frac * len(train_idx)))]
        torch.manual_seed(seed)
        net = build_classifier(arch, 2, images.shape[1])
        fit_classifier(
            net, images[idx], labels[idx], epochs=epochs, device=device, seed=seed,
            augment=random_shift,
        )
        points.append(
            SweepPoint(
                fraction=float(frac),
                n_train=int(len(idx)),
                train_accuracy=accuracy(net, images[idx], labels[idx], device=device),
                test_accuracy=accuracy(net, images[test_idx], labels[test_idx], device=device),
            )
        )
    return points
