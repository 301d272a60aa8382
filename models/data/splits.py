"""One-shot splits: training classes vs held-out classes, made with a seed and recorded."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.data.dataset import ImageDataset

EXEMPLAR_RULES = ("first", "seeded")


def choose_exemplars(dataset: ImageDataset, rule: str = "first", seed: int = 0) -> dict[str, str]:
    """One exemplar id per class: `first` = the smallest id in sorted order; `seeded` = drawn with
    numpy's default_rng(seed) over the class's sorted ids."""
    if rule not in EXEMPLAR_RULES:
        raise ValueError(f"exemplar_rule: {rule!r} is not one of {EXEMPLAR_RULES}")
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    for label, cls in enumerate(dataset.class_names):
        ids = sorted(dataset.ids[i] for i in dataset.indices_of_class(label))
        if not ids:
            continue
        out[cls] = ids[0] if rule == "first" else ids[int(rng.integers(len(ids)))]
    return out


def one_shot_split(
    dataset: ImageDataset, n_heldout_classes: int, seed: int, exemplar_rule: str = "first"
) -> tuple[ImageDataset, ImageDataset, dict[str, Any]]:
    """Split by class: `n_heldout_classes` classes drawn with numpy default_rng(seed) are held out.

    Returns (train, heldout, record); both parts are relabelled 0..k-1 in the original class
    order. `record` (JSON-serialisable) names the classes of each part, the exemplar of every class
    and the rule, and `apply_split(dataset, record)` remakes the same split.
    """
    n_classes = len(dataset.class_names)
    if not 0 <= n_heldout_classes < n_classes:
        raise ValueError(
            f"data.heldout_classes: {n_heldout_classes} must be in [0, {n_classes - 1}] for {dataset.name}"
        )
    rng = np.random.default_rng(seed)
    held = sorted(rng.permutation(n_classes)[:n_heldout_classes].tolist())
    record = {
        "dataset": dataset.name,
        "dataset_hash": dataset.content_hash(),
        "seed": seed,
        "n_heldout_classes": n_heldout_classes,
        "heldout_classes": [dataset.class_names[i] for i in held],
        "train_classes": [c for i, c in enumerate(dataset.class_names) if i not in set(held)],
        "exemplar_rule": exemplar_rule,
        "exemplars": choose_exemplars(dataset, exemplar_rule, seed),
    }
    train, heldout = apply_split(dataset, record)
    return train, heldout, record


def apply_split(dataset: ImageDataset, record: dict[str, Any]) -> tuple[ImageDataset, ImageDataset]:
    """Remake (train, heldout) from a split record; a data set without the record's classes is an
    error naming them."""
    index = {c: i for i, c in enumerate(dataset.class_names)}
    missing = [c for c in record["heldout_classes"] + record["train_classes"] if c not in index]
    if missing:
        raise ValueError(f"split: classes {missing[:3]} of the recorded split are not in {dataset.name}")
    held = {index[c] for c in record["heldout_classes"]}
    labels = dataset.labels.tolist()
    train_idx = [i for i, lab in enumerate(labels) if lab not in held]
    held_idx = [i for i, lab in enumerate(labels) if lab in held]
    heldout = dataset.subset(held_idx) if held_idx else _empty_like(dataset)
    return dataset.subset(train_idx), heldout


def _empty_like(dataset: ImageDataset) -> ImageDataset:
    return ImageDataset(
        images=dataset.images[:0].clone(),
        labels=dataset.labels[:0].clone(),
        class_names=[],
        ids=[],
        name=dataset.name,
    )
