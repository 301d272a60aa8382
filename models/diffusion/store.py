"""Diffusion checkpoints in the project's one checkpoint format (models.checkpoint).

Importing this module registers the `diffusion` kind (the UNet, with its Config parsed back from
the stored dict) with `models.checkpoint.register_builder`; models.checkpoint itself imports no
network. Load diffusion models with `load_diffusion`, which refuses any other kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models.checkpoint import CheckpointError, load_checkpoint, register_builder
from models.config import Config, config_from_dict
from models.diffusion.unet import UNet

KIND = "diffusion"

register_builder(KIND, UNet, config_from_dict)


def load_diffusion(
    path: Path | str,
    device: torch.device | str | None = None,
    config: Config | None = None,
    weights: str = "ema",
) -> tuple[UNet, Config, dict[str, Any]]:
    """(UNet in eval mode on `device`, its Config, meta) of a diffusion checkpoint. With `config`,
    its kind/data/model/diffusion sections must equal the stored ones (CheckpointError lists every
    difference). `weights`: 'ema' (what sampling uses) or 'raw'."""
    net, cfg, meta = load_checkpoint(path, device=device, config=config, weights=weights)
    if not isinstance(net, UNet):
        kind = cfg.get("kind") if isinstance(cfg, dict) else type(net).__name__
        raise CheckpointError(f"checkpoint: {str(path)!r} holds a {kind!r}, not a diffusion model")
    return net, cfg, meta
