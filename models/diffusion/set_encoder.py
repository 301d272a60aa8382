"""FSDM's set encoder: a context set of same-class images pooled into one vector (DeepSets)."""

from __future__ import annotations

import torch
from torch import nn


class SetEncoder(nn.Module):
    """(B, K, 1, H, W) images in [-1, 1] -> (B, out_dim): a shared small CNN per image, mean over
    the K images (order-invariant, any K >= 1), then an MLP."""

    def __init__(self, out_dim: int, width: int = 16) -> None:
        super().__init__()
        self.image_net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(2 * width, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, sets: torch.Tensor) -> torch.Tensor:
        if sets.ndim != 5:
            raise ValueError(f"context: a set context must be (B, K, 1, H, W), got {tuple(sets.shape)}")
        b, k = sets.shape[:2]
        feats = self.image_net(sets.flatten(0, 1)).view(b, k, -1)
        return self.head(feats.mean(dim=1))
