"""Samplers as pure functions of (net, x_T, schedule, context): no state outside the arguments.

Every sampler has the same signature (as k-diffusion's do), so callers pick one by name from
`SAMPLERS` and pass the same keywords:

    sampler(net, x_T, schedule, context, *, steps=None, w=0.0, eta=0.0, generator=None, callback=None)

`steps` is the number of network evaluations (None: the sampler's default; DDPM always takes T),
`w` the classifier-free guidance scale, `eta` DDIM's stochasticity (ignored by the others).

Shared conventions:
- `generator`: None, one torch.Generator for the batch, or a list with one generator per sample
  (then each sample's noise depends only on its own generator, so a sample is the same whatever
  batch it is drawn in -- the sharded sampling CLI relies on this).
- `callback(t, x_t, eps)` is called once per network evaluation with the int timestep, the current
  x_t (B, 1, H, W) and the guided eps used for that step (attribution sums over this path).
- x is returned clamped to [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from models.diffusion.guidance import guided_eps
from models.diffusion.schedule import Schedule

Callback = Callable[[int, torch.Tensor, torch.Tensor], None]
GeneratorArg = torch.Generator | Sequence[torch.Generator] | None


def randn_like(x: torch.Tensor, generator: GeneratorArg) -> torch.Tensor:
    """Standard normal noise shaped like x, drawn from `generator` (see module doc) on the
    generator's device, then moved to x's device."""
    if generator is None or isinstance(generator, torch.Generator):
        dev = generator.device if generator is not None else x.device
        return torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype).to(x.device)
    if len(generator) != x.shape[0]:
        raise ValueError(f"generator: got {len(generator)} generators for a batch of {x.shape[0]}")
    return torch.stack(
        [torch.randn(x.shape[1:], generator=g, device=g.device, dtype=x.dtype) for g in generator]
    ).to(x.device)


def initial_noise(shape: tuple[int, ...], generator: GeneratorArg, device: torch.device | str) -> torch.Tensor:
    """x_T ~ N(0, I) of `shape`, drawn like `randn_like`."""
    return randn_like(torch.empty(shape, device=device), generator)


def predicted_x0(x: torch.Tensor, eps: torch.Tensor, alphabar: float) -> torch.Tensor:
    """x0 = (x_t - sqrt(1 - alphabar_t) eps) / sqrt(alphabar_t), clamped to the data range [-1, 1]."""
    return ((x - (1.0 - alphabar) ** 0.5 * eps) / alphabar**0.5).clamp(-1.0, 1.0)


def _timesteps(x: torch.Tensor, t: int) -> torch.Tensor:
    return torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)


@torch.no_grad()
def ddpm_sample(
    net: nn.Module,
    x_T: torch.Tensor,
    schedule: Schedule,
    context: torch.Tensor | None,
    *,
    steps: int | None = None,
    w: float = 0.0,
    eta: float = 0.0,
    generator: GeneratorArg = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Ancestral sampling over t = T..1 (Ho et al. 2020) with sigma_t^2 = beta_t:
    x_{t-1} = (x_t - beta_t / sqrt(1 - alphabar_t) eps) / sqrt(alpha_t) + sigma_t z, z = 0 at t = 1.
    Always T steps (`steps` must be None or T); `eta` is not used."""
    if steps is not None and steps != schedule.T:
        raise ValueError(f"steps: DDPM runs all T = {schedule.T} steps, got {steps}")
    x = x_T
    for t in range(schedule.T, 0, -1):
        tt = _timesteps(x, t)
        eps = guided_eps(net, x, tt, context, w)
        if callback is not None:
            callback(t, x, eps)
        beta, alpha, ab = (float(schedule.betas[t]), float(schedule.alphas[t]), float(schedule.alphabar[t]))
        mean = (x - beta / (1.0 - ab) ** 0.5 * eps) / alpha**0.5
        x = mean + beta**0.5 * randn_like(x, generator) if t > 1 else mean
    return x.clamp(-1.0, 1.0)


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """`steps` timesteps evenly spaced over T..1, descending, always starting at T and ending at 1."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps: must be in 1..{T}, got {steps}")
    if steps == 1:
        return [T]
    grid = torch.linspace(T, 1, steps, dtype=torch.float64).round().long().tolist()
    return sorted(set(grid), reverse=True)


@torch.no_grad()
def ddim_sample(
    net: nn.Module,
    x_T: torch.Tensor,
    schedule: Schedule,
    context: torch.Tensor | None,
    *,
    steps: int | None = 50,
    w: float = 0.0,
    eta: float = 0.0,
    generator: GeneratorArg = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """DDIM (Song et al. 2021) over `ddim_timesteps(T, steps)`; eta = 0 is deterministic given x_T,
    eta = 1 matches DDPM's posterior variance. x0 is predicted from eps and clamped to [-1, 1]."""
    if eta < 0:
        raise ValueError(f"eta: must be >= 0, got {eta}")
    x = x_T
    ts = ddim_timesteps(schedule.T, 50 if steps is None else steps)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else 0
        eps = guided_eps(net, x, _timesteps(x, t), context, w)
        if callback is not None:
            callback(t, x, eps)
        ab, ab_prev = float(schedule.alphabar[t]), float(schedule.alphabar[t_prev])
        x0 = predicted_x0(x, eps, ab)
        eps = (x - ab**0.5 * x0) / (1.0 - ab) ** 0.5  # consistent with the clamped x0
        sigma = eta * ((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev)) ** 0.5
        x = ab_prev**0.5 * x0 + max(1.0 - ab_prev - sigma**2, 0.0) ** 0.5 * eps
        if sigma > 0 and t_prev > 0:
            x = x + sigma * randn_like(x, generator)
    return x.clamp(-1.0, 1.0)


@torch.no_grad()
def dpmpp_2m_sample(
    net: nn.Module,
    x_T: torch.Tensor,
    schedule: Schedule,
    context: torch.Tensor | None,
    *,
    steps: int | None = 20,
    w: float = 0.0,
    eta: float = 0.0,
    generator: GeneratorArg = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, multistep second order in the data prediction) over
    `ddim_timesteps(T, steps)`. With alpha_t = sqrt(alphabar_t), sigma_t = sqrt(1 - alphabar_t),
    lambda_t = log(alpha_t / sigma_t), h = lambda_t' - lambda_t and x0 predicted from eps (clamped
    to [-1, 1], as in `ddim_sample`):
        x_t' = (sigma_t' / sigma_t) x_t - alpha_t' (exp(-h) - 1) D,
    where D = x0 at the first step and D = (1 + 1/(2r)) x0 - 1/(2r) x0_prev after it, r = h_prev / h.
    The step into the last timestep (t = 1, nearly clean, where h is largest and the second-order
    extrapolation overshoots) is first order ("lower order final"), and the last evaluation
    returns its predicted x0.
    Deterministic given x_T; `eta` and `generator` are not used."""
    x = x_T
    ts = ddim_timesteps(schedule.T, 20 if steps is None else steps)
    ab = schedule.alphabar

    def lam(t: int) -> float:
        return 0.5 * (math.log(float(ab[t])) - math.log(1.0 - float(ab[t])))

    x0_prev, h_prev = None, None
    for i, t in enumerate(ts):
        t_next = ts[i + 1] if i + 1 < len(ts) else 0
        eps = guided_eps(net, x, _timesteps(x, t), context, w)
        if callback is not None:
            callback(t, x, eps)
        s_t = (1.0 - float(ab[t])) ** 0.5
        x0 = predicted_x0(x, eps, float(ab[t]))
        if t_next == 0:
            return x0
        a_n, s_n = float(ab[t_next]) ** 0.5, (1.0 - float(ab[t_next])) ** 0.5
        h = lam(t_next) - lam(t)
        if x0_prev is None or i == len(ts) - 2:
            d = x0
        else:
            r = h_prev / h
            d = (1.0 + 1.0 / (2.0 * r)) * x0 - (1.0 / (2.0 * r)) * x0_prev
        x = (s_n / s_t) * x - a_n * math.expm1(-h) * d
        x0_prev, h_prev = x0, h
    return x.clamp(-1.0, 1.0)


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddpm": ddpm_sample,
    "ddim": ddim_sample,
    "dpmpp_2m": dpmpp_2m_sample,
}


def get_sampler(name: str) -> Callable[..., torch.Tensor]:
    """The sampler called `name` (one of SAMPLERS); ValueError naming `sampler` otherwise."""
    if name not in SAMPLERS:
        raise ValueError(f"sampler: must be one of {', '.join(SAMPLERS)}, got {name!r}")
    return SAMPLERS[name]
