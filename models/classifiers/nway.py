"""The N-way class classifier: does a sample show its class? Trained on real images of the
classes; `class_agreement` scores samples by the share classified as their intended class."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.classifiers.backbones import build_classifier
from models.classifiers.training import check_images, fit_classifier, predict_logits, random_shift


def train_nway(
    images: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int | None = None,
    *,
    arch: str = "conv4",
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 1e-3,
    device: torch.device | str | None = None,
    seed: int = 0,
    progress: bool = False,
) -> nn.Module:
    """Train an N-way classifier on images (N, C, H, W) in [-1, 1] with labels (N,) in
    0..n_classes-1; returns the network in eval mode (logits (N, n_classes))."""
    check_images(images, labels)
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    if int(labels.min()) < 0 or int(labels.max()) >= n_classes:
        raise ValueError(f"labels: must lie in 0..{n_classes - 1}")
    torch.manual_seed(seed)
    net = build_classifier(arch, n_classes, images.shape[1])
    fit_classifier(
        net, images, labels, epochs=epochs, batch_size=batch_size, lr=lr, device=device,
        seed=seed, augment=random_shift, progress=progress,
    )
    return net


def class_agreement(
    net: nn.Module,
    samples: torch.Tensor,
    intended: torch.Tensor,
    *,
    device: torch.device | str | None = None,
) -> dict[str, float | list[float]]:
    """How often samples (N, C, H, W) are classified as their intended class (N,): the overall
    accuracy and the mean softmax probability given to the intended class, per sample too."""
    check_images(samples, intended)
    probs = predict_logits(net, samples, device=device).softmax(1)
    p_intended = probs.gather(1, intended.view(-1, 1).cpu()).flatten()
    correct = probs.argmax(1) == intended.cpu()
    return {
        "accuracy": float(correct.float().mean()),
        "mean_probability": float(p_intended.mean()),
        "probability": p_intended.tolist(),
    }


def names_to_indices(names: Sequence[str], class_names: Sequence[str]) -> torch.Tensor:
    """Map class names to the classifier's indices; an unknown name raises ValueError naming it."""
    lookup = {n: i for i, n in enumerate(class_names)}
    missing = sorted({n for n in names if n not in lookup})
    if missing:
        raise ValueError(f"class_label: not a class of this classifier: {', '.join(missing[:5])}")
    return torch.tensor([lookup[n] for n in names], dtype=torch.long)
