"""Classifier checkpoints in the project's one checkpoint format (models.checkpoint).

Importing this module registers each classifier kind's builder with
`models.checkpoint.register_builder`, so that `load_checkpoint` rebuilds classifiers too. Config fields: `kind` (one of KINDS), `class_names` (for the classifier kinds), `size`
(image side), plus free training parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.checkpoint import load_checkpoint, register_builder, save_checkpoint
from models.classifiers.backbones import build_classifier
from models.classifiers.protonet import ProtoNet
from models.classifiers.simclr import SimCLREncoder

KINDS = ("realfake_classifier", "nway_classifier", "feedback_classifier", "protonet", "simclr")


BUILDERS = {
    "realfake_classifier": build_classifier,
    "nway_classifier": build_classifier,
    "feedback_classifier": build_classifier,
    "protonet": ProtoNet,
    "simclr": SimCLREncoder,
}


def register_classifier_kinds() -> None:
    """Register every classifier kind with the checkpoint module (idempotent)."""
    for kind, builder in BUILDERS.items():
        register_builder(kind, builder)


register_classifier_kinds()


def save_classifier(path: Path | str, net: nn.Module, config: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Save `net` with `config` (must name a `kind` of KINDS) and `meta`; returns the path."""
    kind = config.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind: {kind!r} is not a classifier kind ({', '.join(KINDS)})")
    if not isinstance(getattr(net, "arch", None), dict):
        raise ValueError("net: build it with models.classifiers (its `arch` records the constructor)")
    return save_checkpoint(path, net, config, meta, kind=kind)


def load_classifier(
    path: Path | str, device: torch.device | str | None = None
) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """(network in eval mode on `device`, config dict, meta) of a classifier checkpoint."""
    net, config, meta = load_checkpoint(path, device=device)
    if not isinstance(config, dict) or config.get("kind") not in KINDS:
        kind = config.get("kind") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"checkpoint: {path} holds a {kind!r}, not a classifier ({', '.join(KINDS)})")
    return net, config, meta
