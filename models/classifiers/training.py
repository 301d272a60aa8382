"""One supervised training loop and evaluation shared by the real-vs-fake, N-way and feedback
classifiers (cross-entropy, Adam, mini-batches, a seeded generator, optional augmentation)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def check_images(images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    """Raise ValueError naming the field when images are not (N, C, H, W) or labels mismatch."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"images: expected a (N, C, H, W) tensor, got {shape}")
    if images.shape[0] == 0:
        raise ValueError("images: empty batch")
    if labels is not None and (labels.ndim != 1 or labels.shape[0] != images.shape[0]):
        raise ValueError(
            f"labels: expected shape ({images.shape[0]},), got {tuple(labels.shape)}"
        )


def fit_classifier(
    net: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    device: torch.device | str | None = None,
    seed: int = 0,
    augment: Augment | None = None,
    progress: bool = False,
) -> list[float]:
    """Train `net` in place on (images (N, C, H, W) in [-1, 1], labels (N,) int64) with
    cross-entropy; returns the mean loss of each epoch. `augment(batch, generator)` runs per batch."""
    from models.device import pick_device

    check_images(images, labels)
    device = pick_device(device)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    n = images.shape[0]
    history = []
    for _ in tqdm(range(epochs), desc="train", disable=not progress):
        order = torch.randperm(n, generator=gen)
        total, count = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            if idx.numel() < 2 and n >= 2:  # BatchNorm needs two examples
                continue
            x = images[idx]
            if augment is not None:
                x = augment(x, gen)
            x, y = x.to(device), labels[idx].to(device)
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
            count += idx.numel()
        history.append(total / max(count, 1))
    net.eval()
    return history


@torch.no_grad()
def predict_logits(
    net: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Logits (N, n_classes) on the CPU, computed in eval mode in batches."""
    from models.device import pick_device

    check_images(images)
    device = pick_device(device)
    net.to(device).eval()
    out = [net(images[s : s + batch_size].to(device)).float().cpu() for s in range(0, len(images), batch_size)]
    return torch.cat(out)


def accuracy(
    net: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    device: torch.device | str | None = None,
) -> float:
    """Share of images whose arg-max logit equals the label."""
    check_images(images, labels)
    pred = predict_logits(net, images, device=device).argmax(1)
    return float((pred == labels.cpu()).float().mean())


def random_shift(x: torch.Tensor, gen: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Augmentation: roll each image by up to `max_shift` pixels (filling with the background -1)."""
    padded = F.pad(x, [max_shift] * 4, value=-1.0)
    h, w = x.shape[-2:]
    out = torch.empty_like(x)
    offs = torch.randint(0, 2 * max_shift + 1, (x.shape[0], 2), generator=gen)
    for i, (dy, dx) in enumerate(offs.tolist()):
        out[i] = padded[i, :, dy : dy + h, dx : dx + w]
    return out


def random_affine(
    x: torch.Tensor,
    gen: torch.Generator,
    rotate_deg: float = 10.0,
    scale: float = 0.15,
    shift: float = 0.1,
    shear: float = 0.2,
) -> torch.Tensor:
    """Augmentation: an independent random affine distortion of each image (N, C, H, W) in
    [-1, 1] -- rotation uniform in +-rotate_deg, zoom in 1 +- scale, shift in +-shift of the
    half-width, shear in +-shear -- resampled bilinearly with background -1 (Koch et al. 2015's
    distortions for one-shot character learning)."""
    n = x.shape[0]
    u = torch.rand(n, 5, generator=gen) * 2.0 - 1.0
    angle = u[:, 0] * math.radians(rotate_deg)
    zoom = 1.0 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([
        torch.stack([cos, -sin + u[:, 4] * shear, u[:, 2] * shift], 1),
        torch.stack([sin, cos, u[:, 3] * shift], 1),
    ], 1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1.0, grid.to(x.device), align_corners=False) - 1.0


def rotation_classes(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Class augmentation: each rotation by 0/90/180/270 degrees makes a new class (Vinyals et al.
    2016, Snell et al. 2017). Returns 4x the images with labels label + k * n_classes."""
    n_classes = int(labels.max()) + 1
    ims = [torch.rot90(images, k, dims=(2, 3)) for k in range(4)]
    labs = [labels + k * n_classes for k in range(4)]
    return torch.cat(ims), torch.cat(labs)
