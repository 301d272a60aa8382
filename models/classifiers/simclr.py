"""SimCLR encoder (Chen et al. 2020): the Conv-4 backbone plus a projection head trained with
the NT-Xent loss (temperature 0.5) on two random augmentations of each image. Its backbone
features (before the head) are the feature space of originality, diversity and Frechet distance."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from models.classifiers.backbones import Conv4Encoder
from models.classifiers.training import check_images, random_affine


class SimCLREncoder(nn.Module):
    """`features(x)` (N, D) from the backbone; `forward(x)` the projection (N, proj_dim)."""

    def __init__(
        self, image_size: int, in_channels: int = 1, hidden: int = 64, proj_dim: int = 64
    ) -> None:
        super().__init__()
        self.encoder = Conv4Encoder(in_channels, hidden)
        self.arch = {"image_size": image_size, "in_channels": in_channels, "hidden": hidden,
                     "proj_dim": proj_dim}
        self.gradcam_layer_name = "encoder." + self.encoder.gradcam_layer_name
        dim = hidden * self.encoder.grid(image_size) ** 2
        self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, proj_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float = 0.5) -> torch.Tensor:
    """NT-Xent loss of paired projections z1, z2 (N, D): for each of the 2N views, cross-entropy
    of its positive among the other 2N - 1 views under cosine similarity / tau; mean over 2N."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1, z2: need equal (N, D) shapes, got {tuple(z1.shape)}, {tuple(z2.shape)}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / tau
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, positives)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random affine view of each image (N, C, H, W) in [-1, 1]: rotation +-15 deg, scale
    0.8-1.2, shift +-12% and a shear, resampled bilinearly with background -1."""
    return random_affine(x, gen, rotate_deg=15.0, scale=0.2, shift=0.12, shear=0.15)


def train_simclr(
    images: torch.Tensor,
    *,
    epochs: int = 20,
    batch_size: int = 128,
    tau: float = 0.5,
    lr: float = 1e-3,
    hidden: int = 64,
    device: torch.device | str | None = None,
    seed: int = 0,
    progress: bool = False,
) -> SimCLREncoder:
    """Train a SimCLR encoder on unlabelled images (N, C, H, W) in [-1, 1]; eval mode on return."""
    from models.device import pick_device

    check_images(images)
    if images.shape[0] < 2:
        raise ValueError("images: SimCLR needs at least 2 images")
    device = pick_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if images.shape[2] != images.shape[3]:
        raise ValueError(f"images: SimCLR expects square images, got {tuple(images.shape[2:])}")
    net = SimCLREncoder(images.shape[2], images.shape[1], hidden).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n = images.shape[0]
    for _ in tqdm(range(epochs), desc="simclr", disable=not progress):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n - 1, batch_size):
            x = images[order[start : start + batch_size]]
            if len(x) < 2:
                continue
            v1, v2 = augment(x, gen).to(device), augment(x, gen).to(device)
            loss = nt_xent(net(v1), net(v2), tau)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def extract_features(
    net: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Backbone features (N, D) float64 of images (N, C, H, W), computed in eval mode in batches."""
    from models.device import pick_device

    check_images(images)
    device = pick_device(device)
    net.to(device).eval()
    feats = net.features if hasattr(net, "features") and callable(net.features) else net
    out = [feats(images[s : s + batch_size].to(device)).cpu() for s in range(0, len(images), batch_size)]
    return torch.cat(out).double().numpy()
