"""One checkpoint format for every network in the project (diffusion models and classifiers).

A checkpoint is a torch.save'd dict:
  format, format_version, kind (a key of the builder registry), arch (the constructor's keyword
  arguments), state_dict, ema_state_dict (or None), config (plain dict), meta (dict: dataset_hash,
  code_version, metrics, split, ...), train_state (optimizer/step/RNG for --resume, or None).
Each kind is a plug-in that registers itself with `register_builder(kind, builder)` when it is
imported: models.diffusion.store registers `diffusion` (the UNet), models.classifiers.store the
classifier kinds. This module imports none of them, so it stays below every network.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "diffusion-psychophysics-checkpoint"
FORMAT_VERSION = 1
COMPARED_SECTIONS = ("kind", "data", "model", "diffusion")
# where the data lives may change; what it is is checked by the data set's hash instead
IGNORED_FIELDS = {"data.root"}

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_CONFIG_PARSERS: dict[str, Callable[[dict], Any]] = {}


class CheckpointError(ValueError):
    """A checkpoint is unreadable, of an unknown kind, or does not match the given config."""


def register_builder(
    kind: str, builder: Callable[..., nn.Module], parse_config: Callable[[dict], Any] | None = None
) -> None:
    """Register `builder(**arch) -> nn.Module` for `kind`; `parse_config(dict)` (optional) turns the
    stored config back into the kind's config object."""
    _BUILDERS[kind] = builder
    if parse_config is not None:
        _CONFIG_PARSERS[kind] = parse_config


def code_version() -> str:
    """`git describe --always --dirty` of this checkout, else the installed package version."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        )
        return f"git:{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        try:
            return f"package:{metadata.version('diffusion-psychophysics')}"
        except metadata.PackageNotFoundError:
            return "unknown"


def _as_dict(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, dict):
        return dict(config)
    raise TypeError(f"config: expected a dataclass or dict, got {type(config).__name__}")


def _unwrap(net: nn.Module) -> nn.Module:
    return net.module if hasattr(net, "module") else net


def save_checkpoint(
    path: Path | str,
    net: nn.Module,
    config: Any,
    meta: dict[str, Any],
    ema: nn.Module | None = None,
    train_state: dict[str, Any] | None = None,
    kind: str | None = None,
) -> Path:
    """Write net (its `arch` attribute must hold its constructor kwargs), optional EMA copy,
    config, meta (code_version is added when absent) and train_state; atomic (temp file + rename)."""
    net = _unwrap(net)
    if not hasattr(net, "arch"):
        raise TypeError("net: needs an `arch` dict of constructor arguments to be checkpointed")
    cfg = _as_dict(config)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind or cfg.get("kind", "diffusion"),
        "arch": dict(net.arch),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "ema_state_dict": None if ema is None else {k: v.detach().cpu() for k, v in _unwrap(ema).state_dict().items()},
        "config": cfg,
        "meta": {"code_version": code_version(), **meta},
        "train_state": train_state,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    """The raw checkpoint dict (weights on CPU); clear errors for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint: file {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise CheckpointError(f"checkpoint: {str(path)!r} is not a readable checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint: {str(path)!r} is not a {FORMAT} file")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint: format_version {payload.get('format_version')} is not supported")
    return payload


def config_differences(stored: dict[str, Any], given: dict[str, Any], sections=COMPARED_SECTIONS) -> list[str]:
    """'field: checkpoint A, config B' for every differing field of the compared sections."""
    diffs = []
    for sec in sections:
        a, b = stored.get(sec), given.get(sec)
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if f"{sec}.{key}" in IGNORED_FIELDS:
                    continue
                if a.get(key) != b.get(key):
                    diffs.append(f"{sec}.{key}: checkpoint {a.get(key)!r}, config {b.get(key)!r}")
        elif a != b:
            diffs.append(f"{sec}: checkpoint {a!r}, config {b!r}")
    return diffs


def build_from_checkpoint(payload: dict[str, Any], weights: str = "ema") -> nn.Module:
    """Instantiate the stored network and load its weights ('ema' falls back to 'raw' when none)."""
    kind = payload["kind"]
    if kind not in _BUILDERS:
        raise CheckpointError(
            f"checkpoint: unknown kind {kind!r} (registered: {sorted(_BUILDERS)}; load diffusion models "
            "with models.diffusion.store.load_diffusion and classifiers with "
            "models.classifiers.store.load_classifier, which register their kinds)"
        )
    try:
        net = _BUILDERS[kind](**payload["arch"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint: cannot build a {kind} network from its arch ({exc})") from exc
    state = payload["ema_state_dict"] if weights == "ema" and payload.get("ema_state_dict") else payload["state_dict"]
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint: weights do not fit the {kind} network ({exc})") from exc
    return net


def load_checkpoint(
    path: Path | str,
    device: torch.device | str | None = None,
    config: Any | None = None,
    weights: str = "ema",
) -> tuple[nn.Module, Any, dict[str, Any]]:
    """(net in eval mode on `device`, config, meta). With `config`, its kind/data/model/diffusion
    sections must equal the stored ones, else CheckpointError lists every differing field.
    `weights`: 'ema' (default, what sampling uses) or 'raw'."""
    from models.device import pick_device

    if weights not in ("ema", "raw"):
        raise ValueError(f"weights: must be 'ema' or 'raw', got {weights!r}")
    payload = read_checkpoint(path)
    if config is not None:
        diffs = config_differences(payload["config"], _as_dict(config))
        if diffs:
            raise CheckpointError(
                f"checkpoint: {str(path)!r} does not match the config: " + "; ".join(diffs)
            )
    net = build_from_checkpoint(payload, weights).to(pick_device(device))
    net.eval()
    parse = _CONFIG_PARSERS.get(payload["kind"])
    cfg = parse(payload["config"]) if parse else payload["config"]
    return net, cfg, payload["meta"]
