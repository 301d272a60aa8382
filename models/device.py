"""Pick the torch device every model-side function runs on."""

from __future__ import annotations

import torch


def pick_device(name: torch.device | str | None = None) -> torch.device:
    """Return the device `name` names, or cuda when available else cpu when `name` is None/"auto".

    Accepts a `torch.device` or "cpu", "cuda", "cuda:1", "auto", so callers pass their `device`
    argument straight through. Asking for CUDA on a machine without it raises ValueError with a
    clear message naming the field (rather than failing later inside a kernel).
    """
    if name is None or name == "" or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(name, torch.device):
        device = name
    else:
        try:
            device = torch.device(name)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device: unknown device {name!r} (use cpu, cuda, cuda:N or auto)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {str(name)!r} asked for but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device: {str(name)!r} asked for but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type not in {"cpu", "mps"}:
        raise ValueError(f"device: unsupported device type {device.type!r}")
    return device
