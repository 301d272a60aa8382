"""The classifier networks: LeNet-style CNN, ResNet-18 with a one-channel stem, Conv-4 encoder.

Every network takes images (N, C, H, W) in [-1, 1] at any size >= 8 px and names its last
convolutional block in `gradcam_layer_name`, so attribution can ask for Grad-CAM without knowing
the architecture (`gradcam_layer(model)`).
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

ARCHITECTURES = ("lenet", "resnet18", "conv4")


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """conv3x3 -> BatchNorm -> ReLU -> 2x2 max-pool (ceil mode, so a 1x1 map stays 1x1)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(2, ceil_mode=True),
    )


class Conv4Encoder(nn.Module):
    """Four conv blocks (conv3x3-64, BN, ReLU, max-pool) flattened: the prototypical-network
    backbone of Snell et al. (2017). Output: (N, hidden * ceil(H/16) * ceil(W/16))."""

    def __init__(self, in_channels: int = 1, hidden: int = 64, n_blocks: int = 4) -> None:
        super().__init__()
        blocks = [conv_block(in_channels if i == 0 else hidden, hidden) for i in range(n_blocks)]
        self.blocks = nn.Sequential(*blocks)
        # Grad-CAM reads the second block: the last one is 1x1 on 8-16 px images.
        self.gradcam_layer_name = f"blocks.{min(1, n_blocks - 1)}"
        self.n_blocks = n_blocks

    def grid(self, size: int) -> int:
        """Side of the output feature map for a `size` px input (each pool halves, rounding up)."""
        for _ in range(self.n_blocks):
            size = -(-size // 2)
        return size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x).flatten(1)


class Conv4Classifier(nn.Module):
    """Conv-4 encoder followed by global average pooling and a linear layer: (N, n_classes)."""

    def __init__(self, n_classes: int, in_channels: int = 1, hidden: int = 64) -> None:
        super().__init__()
        self.encoder = Conv4Encoder(in_channels, hidden)
        self.gradcam_layer_name = "encoder." + self.encoder.gradcam_layer_name
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder.blocks(x).mean(dim=(2, 3))
        return self.head(h)


class LeNet(nn.Module):
    """A LeNet-style small CNN (two conv+pool stages, two dense layers), as in the Facade study's
    small real-vs-fake classifier; adaptive pooling makes it size-agnostic. (N, n_classes)."""

    def __init__(self, n_classes: int, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
        )
        self.gradcam_layer_name = "features.4"
        self.pool = nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.AdaptiveAvgPool2d(2))
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(8 * width, 64), nn.ReLU(), nn.Linear(64, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


def resnet18_small(n_classes: int, in_channels: int = 1) -> nn.Module:
    """torchvision's ResNet-18 trained from scratch (weights=None: nothing is downloaded), with a
    3x3 stride-1 one-channel stem and no stem max-pool so 8-28 px images keep a spatial map."""
    net = torchvision.models.resnet18(weights=None, num_classes=n_classes)
    net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.gradcam_layer_name = "layer4"
    return net


def build_classifier(arch: str, n_classes: int, in_channels: int = 1) -> nn.Module:
    """Build an untrained classifier by name (one of ARCHITECTURES); `net.arch` keeps these
    arguments for checkpoints."""
    builders = {"lenet": LeNet, "resnet18": resnet18_small, "conv4": Conv4Classifier}
    if arch not in builders:
        raise ValueError(f"arch: unknown architecture {arch!r} (choose from {', '.join(ARCHITECTURES)})")
    net = builders[arch](n_classes, in_channels)
    net.arch = {"arch": arch, "n_classes": n_classes, "in_channels": in_channels}
    return net


def gradcam_layer(model: nn.Module) -> nn.Module:
    """The layer Grad-CAM reads: the module named by `model.gradcam_layer_name`."""
    name = getattr(model, "gradcam_layer_name", None)
    if name is None:
        raise ValueError(
            "layer: this model names no Grad-CAM layer (set gradcam_layer_name or pass layer=)"
        )
    return model.get_submodule(name)
