"""Build a training batch's context from the data set, per context mode, and context dropout."""

from __future__ import annotations

import torch
from torch import nn

from models.data import ImageDataset


class ContextSampler:
    """Draws contexts for training images: the class label ("class"), another image of the same
    class ("exemplar", the seed's stack mode), or a set of K images of the same class ("set")."""

    def __init__(self, dataset: ImageDataset, mode: str, set_size: int = 5) -> None:
        self.dataset = dataset
        self.mode = mode
        self.set_size = set_size
        self.by_class = [torch.tensor(dataset.indices_of_class(c), dtype=torch.long)
                         for c in range(len(dataset.class_names))]

    def _same_class(self, labels: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        """(B, k) indices of random images (with replacement) of each item's class."""
        out = torch.empty(labels.shape[0], k, dtype=torch.long)
        for i, lab in enumerate(labels.tolist()):
            pool = self.by_class[lab]
            out[i] = pool[torch.randint(len(pool), (k,), generator=generator)]
        return out

    def __call__(self, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor | None:
        """Context for the images at `idx` (B,): None, (B,), (B, 1, H, W) or (B, K, 1, H, W) with
        K uniform in 1..set_size per batch (so the model also works from a single exemplar)."""
        labels = self.dataset.labels[idx]
        if self.mode == "none":
            return None
        if self.mode == "class":
            return labels.clone()
        if self.mode == "exemplar":
            return self.dataset.images[self._same_class(labels, 1, generator)[:, 0]]
        k = int(torch.randint(1, self.set_size + 1, (1,), generator=generator))
        return self.dataset.images[self._same_class(labels, k, generator)]


def drop_context(net: nn.Module, context: torch.Tensor | None, drop: torch.Tensor) -> torch.Tensor | None:
    """Replace the context of the items where `drop` (B,) bool is true by the null context."""
    if context is None:
        return None
    base = net.module if hasattr(net, "module") else net
    null = base.null_context(context)
    mask = drop.to(context.device).view(-1, *([1] * (context.ndim - 1)))
    return torch.where(mask, null, context)
