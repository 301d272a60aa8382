"""Noise schedules. Tensors are indexed by t in 0..T, where t = 0 means no noise
(beta_0 = 0, alphabar_0 = 1) and t = 1..T are the diffusion steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("linear", "cosine")


@dataclass(frozen=True)
class Schedule:
    """betas, alphas, alphabar: float64 tensors of shape (T + 1,), index t = 0..T."""

    kind: str
    T: int
    betas: torch.Tensor
    alphas: torch.Tensor
    alphabar: torch.Tensor

    def coef(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Schedule tensor `name` at timesteps `t` (B,), shaped (B, 1, 1, 1) in `like`'s dtype/device."""
        values = getattr(self, name).to(like.device)[t.to(like.device)]
        return values.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Forward process x_t = sqrt(alphabar_t) x0 + sqrt(1 - alphabar_t) noise; t: (B,) in 0..T."""
        ab = self.coef("alphabar", t, x0)
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise

    def snr(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio alphabar_t / (1 - alphabar_t) at timesteps `t` (B,), float32 (B,)."""
        ab = self.alphabar.to(like.device)[t.to(like.device)]
        return (ab / (1.0 - ab)).float()

    def to_dict(self) -> dict:
        return {"kind": self.kind, "T": self.T}


def shift_alphabar(alphabar: torch.Tensor, shift: float) -> torch.Tensor:
    """Shift a schedule's signal-to-noise ratio: SNR'(t) = SNR(t) / shift^2, i.e.
    alphabar' = alphabar / (alphabar + shift^2 (1 - alphabar)) (Hoogeboom et al. 2023's shifted
    schedules; shift > 1 adds noise at every t, shift < 1 removes it). alphabar_0 = 1 stays 1."""
    if shift <= 0:
        raise ValueError(f"diffusion.snr_shift: must be > 0, got {shift}")
    return alphabar / (alphabar + shift**2 * (1.0 - alphabar))


def make_schedule(
    kind: str,
    T: int,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    cosine_s: float = 0.008,
    snr_shift: float = 1.0,
) -> Schedule:
    """`linear`: beta_t evenly spaced from beta_start (t = 1) to beta_end (t = T), as in Ho et al.
    `cosine`: alphabar_t = f(t) / f(0), f(t) = cos^2(((t / T + s) / (1 + s)) pi / 2), betas clipped
    at 0.999 (Nichol & Dhariwal 2021). `snr_shift` != 1 then shifts either (`shift_alphabar`)."""
    if kind not in SCHEDULES:
        raise ValueError(f"diffusion.schedule: {kind!r} is not one of {SCHEDULES}")
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"diffusion.T: must be a positive integer, got {T!r}")
    if kind == "linear":
        if not 0.0 < beta_start <= beta_end < 1.0:
            raise ValueError("diffusion.beta_start/beta_end: need 0 < beta_start <= beta_end < 1")
        steps = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    else:
        ts = torch.arange(T + 1, dtype=torch.float64)
        f = torch.cos(((ts / T + cosine_s) / (1 + cosine_s)) * math.pi / 2) ** 2
        ab = f / f[0]
        steps = (1.0 - ab[1:] / ab[:-1]).clamp(max=0.999)
    betas = torch.cat([torch.zeros(1, dtype=torch.float64), steps])
    alphabar = torch.cumprod(1.0 - betas, dim=0)
    if snr_shift != 1.0:
        alphabar = shift_alphabar(alphabar, snr_shift)
        betas = torch.cat([torch.zeros(1, dtype=torch.float64), 1.0 - alphabar[1:] / alphabar[:-1]])
    alphas = 1.0 - betas
    return Schedule(kind=kind, T=T, betas=betas, alphas=alphas, alphabar=alphabar)


def schedule_kwargs(diffusion: object) -> dict:
    """make_schedule's keyword arguments from a config's [diffusion] section (one place that maps
    config fields to a schedule, for training, sampling and v-prediction networks)."""
    return {"kind": diffusion.schedule, "T": diffusion.T, "beta_start": diffusion.beta_start,
            "beta_end": diffusion.beta_end, "snr_shift": getattr(diffusion, "snr_shift", 1.0)}
