"""Classifier-free guidance (Ho & Salimans 2022)."""

from __future__ import annotations

import torch
from torch import nn


def _batch_cat(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return None if a is None else torch.cat([a, b], dim=0)


def guided_eps(
    net: nn.Module, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None, w: float
) -> torch.Tensor:
    """eps = (1 + w) eps(x, t, context) - w eps(x, t, null context); w = 0 is the plain
    conditional prediction (one network call), w > 0 runs both halves in one batch.

    x: (B, 1, H, W); t: (B,) in 1..T; returns (B, 1, H, W)."""
    if w == 0:
        return net(x, t, context)
    base = net.module if hasattr(net, "module") else net
    null = base.null_context(context)
    eps = net(torch.cat([x, x]), torch.cat([t, t]), _batch_cat(context, null))
    eps_c, eps_u = eps.chunk(2)
    return (1.0 + w) * eps_c - w * eps_u
