"""The ClickMe game's feedback classifier: recognises the class from an image in which only the
revealed bubbles are kept, in milliseconds on a CPU.

Contract (the study's web app calls it, see study/feedback.py):
`FeedbackClassifier.load(path, device=None)` and
`.predict(images: np.ndarray float32 (N, H, W) in [0, 1]) -> list[(label, probability)]`.
Inputs are in the stimulus PNG's polarity (black ink = 0 on white = 1, grey levels / 255) with
the unrevealed pixels set to `fill` (default 0.5, a neutral grey that is neither ink nor paper;
stored in the checkpoint, and study.feedback uses the loaded classifier's value); any H, W is
resized to the classifier's grid. Training shows it exactly that: real images turned to PNG
polarity, random bubbles revealed (some images fully), the rest set to `fill`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.classifiers.backbones import build_classifier
from models.classifiers.training import check_images, fit_classifier

KIND = "feedback_classifier"
# Unrevealed pixels: a neutral grey, neither ink (0) nor paper (1); training, loading and the CLI
# share it, so a checkpoint without a stored fill loads with the value training uses.
DEFAULT_FILL = 0.5


def random_reveal(
    unit: torch.Tensor,
    gen: torch.Generator,
    *,
    fill: float = DEFAULT_FILL,
    max_bubbles: int = 12,
    radius: tuple[float, float] = (0.06, 0.2),
    p_full: float = 0.15,
) -> torch.Tensor:
    """Keep random discs of each image (N, 1, H, W) in [0, 1] and set the rest to `fill`.
    Per image: 1..max_bubbles discs, radii a uniform fraction of the width in `radius`; with
    probability p_full the whole image stays revealed."""
    n, _, h, w = unit.shape
    yy = (torch.arange(h, dtype=torch.float32) + 0.5) / w
    xx = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    k = torch.randint(1, max_bubbles + 1, (n,), generator=gen)
    centres = torch.rand(n, max_bubbles, 2, generator=gen) * torch.tensor([1.0, h / w])
    radii = radius[0] + (radius[1] - radius[0]) * torch.rand(n, max_bubbles, generator=gen)
    active = torch.arange(max_bubbles)[None, :] < k[:, None]
    d2 = (xx[None, None, None, :] - centres[..., 0, None, None]) ** 2 + (
        yy[None, None, :, None] - centres[..., 1, None, None]
    ) ** 2
    inside = (d2 <= radii[..., None, None] ** 2) & active[..., None, None]
    mask = inside.any(1)
    mask |= (torch.rand(n, generator=gen) < p_full)[:, None, None]
    return torch.where(mask[:, None], unit, torch.full_like(unit, fill))


class FeedbackClassifier:
    """A small CNN over revealed images plus its class names; see the module doc for the contract."""

    def __init__(
        self,
        net: nn.Module,
        class_names: Sequence[str],
        size: int,
        fill: float = DEFAULT_FILL,
        device: torch.device | str | None = None,
        arch: str = "lenet",
    ) -> None:
        from models.device import pick_device

        self.device = pick_device(device)
        self.net = net.to(self.device).eval()
        self.class_names = list(class_names)
        self.size = int(size)
        self.fill = float(fill)
        self.arch = arch

    @staticmethod
    def to_unit(images: torch.Tensor) -> torch.Tensor:
        """Model-range images (N, 1, H, W), ink = +1, -> PNG polarity in [0, 1] (ink = 0)."""
        return 1.0 - (images.clamp(-1, 1) + 1.0) / 2.0

    @classmethod
    def train(
        cls,
        images: torch.Tensor,
        labels: torch.Tensor,
        class_names: Sequence[str],
        *,
        arch: str = "lenet",
        epochs: int = 20,
        fill: float = DEFAULT_FILL,
        lr: float = 2e-3,
        device: torch.device | str | None = None,
        seed: int = 0,
        progress: bool = False,
    ) -> FeedbackClassifier:
        """Train on model-range images (N, 1, H, W) (ink = +1) with labels (N,) indexing
        class_names; every batch gets fresh random reveals."""
        check_images(images, labels)
        if images.shape[1] != 1 or images.shape[2] != images.shape[3]:
            raise ValueError(f"images: expected (N, 1, S, S), got {tuple(images.shape)}")
        if int(labels.max()) >= len(class_names):
            raise ValueError("class_names: fewer names than classes in labels")
        torch.manual_seed(seed)
        net = build_classifier(arch, len(class_names), 1)
        unit = cls.to_unit(images.float())

        def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            return random_reveal(x, gen, fill=fill) * 2.0 - 1.0  # the net reads [-1, 1]

        fit_classifier(
            net, unit, labels, epochs=epochs, lr=lr, device=device, seed=seed, augment=augment,
            progress=progress,
        )
        return cls(net, class_names, images.shape[-1], fill, device, arch)

    def _prepare(self, images: np.ndarray) -> torch.Tensor:
        arr = np.asarray(images, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[0] == 0:
            raise ValueError(f"images: expected a float32 (N, H, W) array, got shape {arr.shape}")
        if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
            raise ValueError("images: values must be finite and in [0, 1]")
        x = torch.from_numpy(np.ascontiguousarray(arr))[:, None]
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return (x * 2.0 - 1.0).to(self.device)

    @torch.inference_mode()
    def predict(self, images: np.ndarray) -> list[tuple[str, float]]:
        """(label, probability) of the most probable class for each image (N, H, W) in [0, 1]."""
        probs = self.net(self._prepare(images)).float().softmax(1).cpu()
        top, idx = probs.max(1)
        return [(self.class_names[i], float(p)) for i, p in zip(idx.tolist(), top.tolist(), strict=True)]

    def config(self) -> dict:
        """What `load` needs to rebuild the network."""
        return {
            "kind": KIND,
            "arch": self.arch,
            "n_classes": len(self.class_names),
            "size": self.size,
            "fill": self.fill,
            "class_names": self.class_names,
        }

    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        """Write the checkpoint (models.classifiers.store format) and return its path."""
        from models.classifiers.store import save_classifier

        return save_classifier(path, self.net, self.config(), meta or {})

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str | None = None) -> FeedbackClassifier:
        """Load a checkpoint written by `save`; a checkpoint of another kind is a ValueError."""
        from models.classifiers.store import load_classifier

        net, config, _meta = load_classifier(path, device=device)
        if config.get("kind") != KIND:
            raise ValueError(f"checkpoint: {path} holds a {config.get('kind')!r}, not a {KIND}")
        return cls(
            net, config["class_names"], config["size"], config.get("fill", DEFAULT_FILL), device, config["arch"]
        )

