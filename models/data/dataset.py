"""The in-memory image data set every loader returns."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class ImageDataset:
    """A labelled set of single-channel images in the diffusion model's range.

    images: (N, 1, H, W) float32 in [-1, 1], ink = +1 (ink-on-black).
    labels: (N,) int64, indices into `class_names`.
    class_names: one name per class (e.g. `digit3_rot90`, `Balinese/character01`).
    ids: one unique, stable string per image (e.g. `omniglot/Balinese/character01/0108_01`).
    name: the data set's name as the manifest writes it (`digits`, `omniglot`, `folder:NAME`).
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    ids: list[str]
    name: str

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.ndim != 4 or self.images.shape[1] != 1:
            raise ValueError(f"images: expected shape (N, 1, H, W), got {tuple(self.images.shape)}")
        if self.labels.shape != (n,) or len(self.ids) != n:
            raise ValueError(
                f"labels/ids: expected {n} entries, got {tuple(self.labels.shape)} and {len(self.ids)}"
            )
        if len(set(self.ids)) != n:
            raise ValueError("ids: image ids must be unique")
        if n and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.class_names)):
            raise ValueError("labels: a label is outside range(len(class_names))")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def size(self) -> int:
        """Side length in pixels (images are square)."""
        return int(self.images.shape[-1])

    def subset(self, indices: Sequence[int] | torch.Tensor, relabel: bool = True) -> ImageDataset:
        """Images at `indices`; with `relabel` the classes present are renumbered 0..k-1 in the
        order of the original class indices (class_names kept in that order)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        labels = self.labels[idx]
        names = self.class_names
        if relabel:
            present = sorted(set(labels.tolist()))
            remap = {old: new for new, old in enumerate(present)}
            labels = torch.tensor([remap[int(v)] for v in labels], dtype=torch.long)
            names = [self.class_names[i] for i in present]
        return ImageDataset(
            images=self.images[idx].clone(),
            labels=labels,
            class_names=list(names),
            ids=[self.ids[i] for i in idx.tolist()],
            name=self.name,
        )

    def indices_of_class(self, label: int) -> list[int]:
        """Positions of the images of class `label`, in data set order."""
        return torch.nonzero(self.labels == label).flatten().tolist()

    def content_hash(self) -> str:
        """sha256 over images, labels, class names and ids: identifies the exact training data."""
        h = hashlib.sha256()
        h.update(self.name.encode())
        h.update(self.images.to(torch.float32).contiguous().numpy().tobytes())
        h.update(self.labels.contiguous().numpy().tobytes())
        h.update("\n".join(self.class_names).encode())
        h.update("\n".join(self.ids).encode())
        return h.hexdigest()
