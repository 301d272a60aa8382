"""Synthetic tasks with known ground truth for the attribution tests: the class lives in one
region only, plus a tiny noise-prediction network that follows the diffusion call convention."""

from __future__ import annotations

import torch
from torch import nn

SIZE = 16
REGION = (slice(0, 8), slice(0, 8))  # rows, cols: the top-left quadrant carries the class


def region_mask(size: int = SIZE) -> torch.Tensor:
    """(size, size) bool, True inside REGION."""
    m = torch.zeros(size, size, dtype=torch.bool)
    m[REGION] = True
    return m


N_CLASSES = 4
DOT = 1.0


def _stroke(img: torch.Tensor, r: int, c: int, kind: int, length: int = 4) -> None:
    """A 4-px stroke from (r, c): 0 horizontal, 1 vertical, 2 diagonal, 3 anti-diagonal."""
    for k in range(length):
        rr, cc = [(r, c + k), (r + k, c), (r + k, c + k), (r + k, c + length - 1 - k)][kind]
        img[rr, cc] = 1.0


def region_task(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, 16, 16) images in [-1, 1] and labels (n,) in 0..3: the class is the direction of a
    4-px stroke inside REGION (horizontal, vertical, diagonal, anti-diagonal); outside it lie
    random distractor dots (same law for every class), so a classifier must read REGION and
    ignore clutter. Four classes, so every class needs positive evidence of its own."""
    gen = torch.Generator().manual_seed(seed)
    images = -torch.ones(n, 1, SIZE, SIZE)
    labels = torch.randint(0, N_CLASSES, (n,), generator=gen)
    for i in range(n):
        img = images[i, 0]
        r, c = (int(v) for v in torch.randint(1, 4, (2,), generator=gen))
        _stroke(img, r, c, int(labels[i]))
        dots = (torch.rand(SIZE, SIZE, generator=gen) < 0.06) & ~region_mask()
        img[dots] = DOT
    return images, labels


def mass_in_region(maps, size: int = SIZE) -> torch.Tensor:
    """Share of each map's (N, H, W) total mass inside REGION, (N,)."""
    m = torch.as_tensor(maps)
    inside = (m * region_mask(size)).flatten(1).sum(1)
    return inside / m.flatten(1).sum(1).clamp(min=1e-12)


class TinyEps(nn.Module):
    """eps = net(x, t, context) for class-label contexts (N,) in 0..n_classes-1, with the null
    token n_classes: a weak context-free conv term everywhere plus a class term that reads and
    writes REGION only (x_t inside REGION scaled by a per-class gain, plus a per-class bias map)."""

    def __init__(self, n_classes: int = 2, size: int = SIZE, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.n_classes = n_classes
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.gain = nn.Parameter(torch.randn(n_classes + 1, generator=gen).abs() + 0.5)
        self.bias_map = nn.Parameter(torch.randn(n_classes + 1, size, size, generator=gen))
        self.t_scale = nn.Parameter(torch.tensor(0.002))
        self.register_buffer("mask", region_mask(size).float())
        with torch.no_grad():
            self.conv.weight.mul_(0.1)
            self.gain[n_classes] = 0.0  # the null token knows nothing of the class
            self.bias_map[n_classes] = 0.0

    def null_context(self, context: torch.Tensor) -> torch.Tensor:
        return torch.full_like(context, self.n_classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        weak = 0.05 * torch.tanh(self.conv(x))
        cls = self.gain[context].view(-1, 1, 1, 1) * x + self.bias_map[context].unsqueeze(1)
        return weak + self.mask * cls * (1.0 + self.t_scale * t.view(-1, 1, 1, 1).float())
